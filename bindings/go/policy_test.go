package gnaming

// The target's policy query through grpc-go with real RPCs: a selector on registration metadata, the
// local zone and its fallback, and an emptied registry under empty=keep and empty=pass.

import (
	"slices"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestASelectorInTheTargetChoosesServersByTheirMetadata(t *testing.T) {
	etcdEndpoints(t)
	svc := serviceName(t)
	stable, canary := startServer(t, 0), startServer(t, 0)
	register(t, svc, stable, map[string]any{"track": "stable"}, 0)
	canaryReg := register(t, svc, canary, map[string]any{"track": "canary"}, 0)

	_, stableClient := dial(t, "etcd:///"+svc+"?select.track=stable")
	_, canaryClient := dial(t, "etcd:///"+svc+"?select.track=canary")
	stableTraffic, canaryTraffic := startTraffic(stableClient), startTraffic(canaryClient)
	defer stableTraffic.halt()
	defer canaryTraffic.halt()
	answeringServers(t, stableTraffic, 10*time.Second, []string{stable.Addr})
	answeringServers(t, canaryTraffic, 10*time.Second, []string{canary.Addr})

	// The canary is promoted: registered again as stable, it joins the stable clients' servers.
	canaryReg.Close()
	register(t, svc, canary, map[string]any{"track": "stable"}, 0)
	if failed := answeringServers(t, stableTraffic, 10*time.Second, []string{stable.Addr, canary.Addr}); len(failed) > 0 {
		t.Fatalf("%d RPCs of the stable clients failed while the canary was promoted, first: %v", len(failed), failed[0])
	}
}

func TestTheLocalZoneIsCalledAloneUntilItDropsBelowMinZone(t *testing.T) {
	etcdEndpoints(t)
	svc := serviceName(t)
	a1, a2, b1 := startServer(t, 0), startServer(t, 0), startServer(t, 0)
	register(t, svc, a1, map[string]any{"zone": "a"}, 0)
	a2Reg := register(t, svc, a2, map[string]any{"zone": "a"}, 0)
	register(t, svc, b1, map[string]any{"zone": "b"}, 0)

	_, client := dial(t, "etcd:///"+svc+"?prefer-zone=a&min-zone=2")
	tr := startTraffic(client)
	defer tr.halt()
	answeringServers(t, tr, 10*time.Second, []string{a1.Addr, a2.Addr})

	// Zone a drops to one server, below min-zone: every server is called, zone b's included.
	a2Reg.Close()
	if failed := answeringServers(t, tr, 10*time.Second, []string{a1.Addr, b1.Addr}); len(failed) > 0 {
		t.Fatalf("%d RPCs failed while zone a fell back to every zone, first: %v", len(failed), failed[0])
	}
	// Back to two: zone a alone again.
	register(t, svc, a2, map[string]any{"zone": "a"}, 0)
	if failed := answeringServers(t, tr, 10*time.Second, []string{a1.Addr, a2.Addr}); len(failed) > 0 {
		t.Fatalf("%d RPCs failed when zone a came back, first: %v", len(failed), failed[0])
	}
}

func TestAnEmptiedRegistryKeepsTheServerUnderKeepAndFailsFastUnderPass(t *testing.T) {
	etcdEndpoints(t)
	svc := serviceName(t)
	server := startServer(t, 0)
	reg := register(t, svc, server, nil, 0)

	_, keepClient := dial(t, "etcd:///"+svc+"?empty=keep")
	_, passClient := dial(t, "etcd:///"+svc+"?empty=pass")
	keep, pass := startTraffic(keepClient), startTraffic(passClient)
	defer keep.halt()
	answeringServers(t, keep, 10*time.Second, []string{server.Addr})
	answeringServers(t, pass, 10*time.Second, []string{server.Addr})

	// Every key of the service goes; the server itself keeps running.
	reg.Close()
	deadline := time.Now().Add(10 * time.Second)
	var passErr error
	for passErr == nil && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
		_, failed := pass.reset()
		if len(failed) > 0 {
			passErr = failed[len(failed)-1]
		}
	}
	pass.halt()
	if status.Code(passErr) != codes.Unavailable {
		t.Fatalf("empty=pass: after the deregistration the RPCs' last error is %v, want UNAVAILABLE", passErr)
	}
	// Both resolvers watch the same etcd; give the keep client's update time to arrive, then watch it.
	time.Sleep(300 * time.Millisecond)
	keep.reset()
	time.Sleep(700 * time.Millisecond)
	answered, failed := keep.reset()
	if len(failed) > 0 || answered[server.Addr] == 0 {
		t.Fatalf("empty=keep: over 700 ms after the registry emptied, %d RPCs answered by %s and %d failed (first: %v)",
			answered[server.Addr], server.Addr, len(failed), append(failed, nil)[0])
	}
	t.Logf("empty=keep: %d RPCs answered by the kept server in 700 ms after the registry emptied", answered[server.Addr])
}

func TestASubsetCallsNOfTheServersAndKeepsThemWhenAnotherLeaves(t *testing.T) {
	etcdEndpoints(t)
	svc := serviceName(t)
	servers := []*testServer{startServer(t, 0), startServer(t, 0), startServer(t, 0), startServer(t, 0), startServer(t, 0)}
	regs := map[string]*Registration{}
	for _, s := range servers {
		regs[s.Addr] = register(t, svc, s, nil, 0)
	}

	// The subset is the client's: learn which two this client id gets, then hold it to them.
	_, client := dial(t, "etcd:///"+svc+"?subset=2&client-id=web-7")
	tr := startTraffic(client)
	defer tr.halt()
	time.Sleep(300 * time.Millisecond)
	deadline := time.Now().Add(10 * time.Second)
	var subset []string
	for len(subset) != 2 && time.Now().Before(deadline) {
		time.Sleep(300 * time.Millisecond)
		answered, _ := tr.reset()
		subset = keys(answered)
	}
	if len(subset) != 2 {
		t.Fatalf("subset=2: servers answering %v, want exactly 2 of 5", subset)
	}
	answeringServers(t, tr, 5*time.Second, subset)

	// A server outside the subset leaves: the client keeps calling the same two, and none fails.
	for _, s := range servers {
		if !slices.Contains(subset, s.Addr) {
			regs[s.Addr].Close()
			break
		}
	}
	time.Sleep(500 * time.Millisecond)
	answered, failed := tr.reset()
	if got := keys(answered); !slices.Equal(got, subset) || len(failed) > 0 {
		t.Fatalf("after a server outside the subset left: answering %v (want %v), %d failed", got, subset, len(failed))
	}
	// Another client id gets a subset of its own, of the same size.
	_, other := dial(t, "etcd:///"+svc+"?subset=2&client-id=web-8")
	otherTraffic := startTraffic(other)
	defer otherTraffic.halt()
	time.Sleep(600 * time.Millisecond)
	answered, _ = otherTraffic.reset()
	if len(answered) != 2 {
		t.Fatalf("client web-8 with subset=2: answering %v, want 2 servers", keys(answered))
	}
}
