package gnaming

// The target's policy query through grpc-go: a selector on registration metadata chooses which real
// servers a client calls.

import (
	"testing"
	"time"
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
