"""Network namespaces for the chaos scenarios: one per etcd member and one for the client, each joined
by a veth pair to a bridge in a hub namespace of its own. The 10.x addresses exist only inside these
namespaces. A partition is a pair of blackhole routes, so the kernel itself drops what one side sends
the other, while both keep answering everyone else. Needs root and iproute2; standard library only."""

import os
import subprocess


def ip(*args, check=True):
    out = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if check and out.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {out.stderr.strip()}")
    return out


class Network:
    """`members` member namespaces and a client namespace; node i < members is member i, node
    `members` the client."""

    def __init__(self, members=3):
        tag = f"gn{os.getpid() % 100000}"
        self.tag = tag
        self.hub = f"{tag}-hub"
        self.nodes = [f"{tag}-m{i}" for i in range(members)] + [f"{tag}-cl"]
        subnet = 16 + os.getpid() % 200
        self.addresses = [f"10.77.{subnet}.{i + 1}" for i in range(len(self.nodes))]
        self.created = []
        self.cuts = set()

    @property
    def client(self):
        return self.nodes[-1]

    @property
    def members(self):
        """[(namespace, address)] of the members, as the etcd harness takes them."""
        return list(zip(self.nodes[:-1], self.addresses[:-1]))

    @staticmethod
    def available():
        """(True, "") when this process can make namespaces and veth pairs; else (False, why)."""
        if os.geteuid() != 0:
            return False, "network namespaces need root, and this runs as uid %d" % os.geteuid()
        probe = f"gnprobe{os.getpid() % 100000}"
        try:
            ip("netns", "add", probe)
            try:
                ip("link", "add", f"{probe}a", "type", "veth", "peer", "name", f"{probe}b")
                ip("link", "set", f"{probe}b", "netns", probe)
                ip("link", "del", f"{probe}a", check=False)
            finally:
                ip("netns", "del", probe, check=False)
        except (RuntimeError, FileNotFoundError, subprocess.TimeoutExpired) as e:
            return False, f"cannot make a network namespace and a veth pair here: {e}"
        return True, ""

    def create(self):
        ip("netns", "add", self.hub)
        self.created.append(self.hub)
        ip("-n", self.hub, "link", "set", "lo", "up")
        ip("-n", self.hub, "link", "add", "br0", "type", "bridge")
        ip("-n", self.hub, "link", "set", "br0", "up")
        for i, (ns, address) in enumerate(zip(self.nodes, self.addresses)):
            ip("netns", "add", ns)
            self.created.append(ns)
            ip("-n", ns, "link", "set", "lo", "up")
            inside, outside = f"{self.tag}v{i}", f"{self.tag}h{i}"
            ip("link", "add", inside, "type", "veth", "peer", "name", outside)
            ip("link", "set", inside, "netns", ns)
            ip("link", "set", outside, "netns", self.hub)
            ip("-n", ns, "link", "set", inside, "name", "eth0")
            ip("-n", ns, "addr", "add", f"{address}/24", "dev", "eth0")
            ip("-n", ns, "link", "set", "eth0", "up")
            ip("-n", self.hub, "link", "set", outside, "master", "br0", "up")
        return self

    def cut(self, a, b):
        """Drops everything between nodes a and b, both ways."""
        ip("-n", self.nodes[a], "route", "add", "blackhole", f"{self.addresses[b]}/32")
        ip("-n", self.nodes[b], "route", "add", "blackhole", f"{self.addresses[a]}/32")
        self.cuts.add((a, b))

    def heal(self, a, b):
        ip("-n", self.nodes[a], "route", "del", "blackhole", f"{self.addresses[b]}/32", check=False)
        ip("-n", self.nodes[b], "route", "del", "blackhole", f"{self.addresses[a]}/32", check=False)
        self.cuts.discard((a, b))

    def heal_all(self):
        for a, b in list(self.cuts):
            self.heal(a, b)

    def destroy(self):
        """Deletes every namespace made (their veth ends go with them)."""
        for ns in reversed(self.created):
            ip("netns", "del", ns, check=False)
        self.created = []
