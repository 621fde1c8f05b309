// grpc-go's xDS client follows registrations, deregistrations, a killed backend's lease expiry and new
// backends, as libgnaming sees them in etcd and the agent pushes them.
package xdsgo

import (
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// childTTL is the lease of the backend that gets SIGKILLed: its entry lives up to this long after the
// kill, longer than grpc-go's first reconnect backoff (1 s ± 20 %).
const childTTL = 4 * time.Second

// followTimeout bounds how long one change may take to reach the client; a lease expiry adds childTTL.
const followTimeout = 10 * time.Second

func TestXdsClientFollowsRegisterDeregisterKillAndAdd(t *testing.T) {
	useHarnessEtcd(t)
	svc := serviceName(t)
	a, c := startGreeter(t), startGreeter(t)
	regA := register(t, svc, a.Addr, nil, 0)
	client := dialXDS(t, svc)

	took := waitAnswering(t, client, followTimeout, a.Addr)
	t.Logf("first registration: answered through xDS after %v", took)

	b := startChildGreeter(t, svc, childTTL)
	register(t, svc, c.Addr, nil, 0)
	took = waitAnswering(t, client, followTimeout, a.Addr, b.Addr, c.Addr)
	t.Logf("two more registrations: all three answer after %v", took)

	if err := regA.Close(); err != nil {
		t.Fatalf("deregistering %s: %v", a.Addr, err)
	}
	took = waitAnswering(t, client, followTimeout, b.Addr, c.Addr)
	t.Logf("deregistration: %s gone after %v", a.Addr, took)

	// SIGKILL leaves B's entry in etcd until its lease expires. A stranger listening on B's address at
	// once is dialled again by the client (grpc-go reconnects after about 1 s) and answers B's RPCs
	// for as long as the agent lists B; the client stops calling that address only when the lease
	// expiry reaches it through xDS.
	killed := time.Now()
	b.kill()
	stranger, err := newGreeter(b.Addr)
	if err != nil {
		t.Fatalf("listening on the killed greeter's address %s: %v", b.Addr, err)
	}
	t.Cleanup(stranger.srv.Stop)
	waitKeyGone(t, svc+"/"+b.Addr, childTTL+followTimeout)
	expired := time.Now()
	if conns := stranger.connections(); len(conns) == 0 {
		t.Fatalf("the client did not dial the killed greeter's address %s in the %v before its lease expired: its entry must stay listed until then",
			b.Addr, expired.Sub(killed).Round(time.Millisecond))
	}
	took = waitAnswering(t, client, followTimeout, c.Addr)
	t.Logf("SIGKILL: the client redialled %s (a stranger listening there) until its lease expired in etcd %v after the kill (TTL %v), and stopped calling it %v after the expiry",
		b.Addr, expired.Sub(killed).Round(time.Millisecond), childTTL, took.Round(time.Millisecond))

	d := startGreeter(t)
	register(t, svc, d.Addr, nil, 0)
	took = waitAnswering(t, client, followTimeout, c.Addr, d.Addr)
	t.Logf("new backend %s answers after %v", d.Addr, took)
}

// waitKeyGone polls etcd with etcdctl, a client independent of libgnaming, until key is deleted.
func waitKeyGone(t testing.TB, key string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		out, err := exec.Command("etcdctl", "--endpoints", os.Getenv("GNAMING_TEST_ETCD_ENDPOINTS"),
			"--command-timeout=2s", "get", "--keys-only", key).Output()
		if err == nil && strings.TrimSpace(string(out)) == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("etcd key %s still there (or etcdctl failing: %v) %v after the kill", key, err, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
