// Changes to a service's list keep grpc-go's connections to the backends that did not change: xDS
// updates the endpoint set in place instead of rebuilding the channel.
package xdsgo

import (
	"slices"
	"testing"
	"time"
)

// listChanges is how many times the changing backend comes and goes (each add and each removal is one
// change of the list).
const listChanges = 50

func TestUnchangedBackendsKeepOneConnectionAcross50Changes(t *testing.T) {
	useHarnessEtcd(t)
	svc := serviceName(t)
	stable := []*greeter{startGreeter(t), startGreeter(t), startGreeter(t)}
	var stableAddrs []string
	for _, g := range stable {
		register(t, svc, g.Addr, nil, 0)
		stableAddrs = append(stableAddrs, g.Addr)
	}
	client := dialXDS(t, svc)
	waitAnswering(t, client, followTimeout, stableAddrs...)

	start := time.Now()
	var slowest time.Duration
	for change := 0; change < listChanges; change += 2 {
		changing := startGreeter(t)
		reg := register(t, svc, changing.Addr, nil, 0)
		slowest = max(slowest, waitAnswering(t, client, followTimeout, slices.Concat(stableAddrs, []string{changing.Addr})...))
		if err := reg.Close(); err != nil {
			t.Fatalf("change %d: deregistering %s: %v", change+2, changing.Addr, err)
		}
		slowest = max(slowest, waitAnswering(t, client, followTimeout, stableAddrs...))
		changing.srv.Stop()
	}
	t.Logf("%d changes in %v, slowest to reach the client %v", listChanges, time.Since(start).Round(time.Millisecond), slowest.Round(time.Millisecond))

	for _, g := range stable {
		if conns := g.connections(); len(conns) != 1 {
			t.Errorf("unchanged backend %s accepted %d client connections across %d changes, want 1: peers %v",
				g.Addr, len(conns), listChanges, conns)
		}
	}
}
