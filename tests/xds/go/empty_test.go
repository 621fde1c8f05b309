// A service that etcd authoritatively says is empty reaches grpc-go as an empty assignment: RPCs fail
// at once with UNAVAILABLE instead of waiting, and work again when a backend registers.
package xdsgo

import (
	"testing"
	"time"

	pb "github.com/libgnaming/libgnaming/demo/go/helloworld"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// failFastBound is what "fails fast" means here: an RPC to an empty endpoint set fails in
// microseconds, one queued behind gRPC's does-not-exist timer after 15 s.
const failFastBound = 250 * time.Millisecond

// firstAnswerBound bounds a fresh channel's first RPC, which also waits for the xDS round trips and the
// agent's first etcd read (about 0.1 s measured on a loaded 2-core machine).
const firstAnswerBound = time.Second

func TestEmptyServiceFailsRPCsFastWithUnavailable(t *testing.T) {
	useHarnessEtcd(t)
	svc := serviceName(t)
	a := startGreeter(t)
	reg := register(t, svc, a.Addr, nil, 0)
	client := dialXDS(t, svc)
	waitAnswering(t, client, followTimeout, a.Addr)

	if err := reg.Close(); err != nil {
		t.Fatalf("deregistering %s: %v", a.Addr, err)
	}
	deregistered := time.Now()
	deadline := deregistered.Add(followTimeout)
	for {
		_, err := answeredBy(client)
		if status.Code(err) == codes.Unavailable {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("RPCs still do not fail with UNAVAILABLE %v after the only backend deregistered; last result: %v", followTimeout, err)
		}
		time.Sleep(pollInterval)
	}
	t.Logf("the emptied service fails RPCs %v after the deregistration", time.Since(deregistered).Round(time.Millisecond))
	slowest := expectFastUnavailable(t, client, 20, failFastBound)
	t.Logf("20 RPCs to the emptied service: each UNAVAILABLE, slowest in %v", slowest)

	// A name with nothing registered at all is empty from the first answer: no 15 s timer.
	fresh := dialXDS(t, serviceName(t)+"-never-registered")
	first := expectFastUnavailable(t, fresh, 1, firstAnswerBound)
	slowest = expectFastUnavailable(t, fresh, 5, failFastBound)
	t.Logf("a fresh channel to a name never registered: its first RPC UNAVAILABLE in %v, the next 5 each in at most %v", first, slowest)

	b := startGreeter(t)
	register(t, svc, b.Addr, nil, 0)
	took := waitAnswering(t, client, followTimeout, b.Addr)
	t.Logf("a backend registered into the empty service answers after %v", took.Round(time.Millisecond))
}

// expectFastUnavailable makes n RPCs, each of which must fail with UNAVAILABLE within bound, and
// returns the slowest.
func expectFastUnavailable(t *testing.T, client pb.GreeterClient, n int, bound time.Duration) time.Duration {
	t.Helper()
	var slowest time.Duration
	for i := range n {
		start := time.Now()
		who, err := answeredBy(client)
		took := time.Since(start)
		slowest = max(slowest, took)
		if status.Code(err) != codes.Unavailable {
			t.Fatalf("RPC %d of %d to an empty service: answered by %q, error %v; want UNAVAILABLE", i+1, n, who, err)
		}
		if took > bound {
			t.Fatalf("RPC %d of %d to an empty service took %v to fail, want under %v: %v", i+1, n, took, bound, err)
		}
	}
	return slowest
}
