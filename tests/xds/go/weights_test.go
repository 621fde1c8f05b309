// Registration weights (metadata {"weight": N}) reach grpc-go's round robin through xDS: the agent puts
// each endpoint in a locality of its own whose weight is the entry's weight.
package xdsgo

import (
	"math"
	"testing"
)

func TestWeights1To3To6ShareRPCs10To30To60Percent(t *testing.T) {
	useHarnessEtcd(t)
	svc := serviceName(t)
	weights := []int{1, 3, 6}
	const rpcs = 1200
	const tolerance = 5.0 // percentage points
	var greeters []*greeter
	var addrs []string
	for _, w := range weights {
		g := startGreeter(t)
		register(t, svc, g.Addr, map[string]any{"weight": w}, 0)
		greeters = append(greeters, g)
		addrs = append(addrs, g.Addr)
	}
	client := dialXDS(t, svc)
	// The lightest backend answers one RPC in ten: 200 RPCs miss it with a probability of 1e-9.
	waitAnsweringWithin(t, client, followTimeout, 200, addrs...)

	answered := map[string]int{}
	for i := range rpcs {
		who, err := answeredBy(client)
		if err != nil {
			t.Fatalf("RPC %d of %d failed: %v", i+1, rpcs, err)
		}
		answered[who]++
	}
	total := 0
	for _, w := range weights {
		total += w
	}
	for i, g := range greeters {
		want := 100 * float64(weights[i]) / float64(total)
		got := 100 * float64(answered[g.Addr]) / rpcs
		t.Logf("weight %d (%s): %d of %d RPCs = %.1f %% (want %.0f %% ± %.0f)", weights[i], g.Addr, answered[g.Addr], rpcs, got, want, tolerance)
		if math.Abs(got-want) > tolerance {
			t.Errorf("weight %d: %.1f %% of RPCs, want %.0f %% ± %.0f; all answers: %v", weights[i], got, want, tolerance, answered)
		}
	}
	if len(answered) != len(weights) {
		t.Errorf("answered by %v, want exactly %v", sortedKeys(answered), sortedCopy(addrs))
	}
}
