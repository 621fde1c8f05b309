package gnaming

// A balancer that keeps one connection per resolved entry and spreads RPCs by weight. grpc-go's
// round_robin merges endpoints with the same address, so `pass:///a#2,b#1` would open one connection
// to a; here each entry is its own SubConn because the entries' attributes (copy index) differ.

import (
	"sync"

	"google.golang.org/grpc/balancer"
	"google.golang.org/grpc/balancer/base"
)

// BalancerName is the name the weighted balancer is registered under, for service configs.
const BalancerName = "gnaming_weighted"

// WeightedServiceConfig selects the weighted balancer; pass it to grpc.WithDefaultServiceConfig.
const WeightedServiceConfig = `{"loadBalancingConfig":[{"` + BalancerName + `":{}}]}`

// RegisterBalancer registers the weighted balancer with grpc-go under BalancerName. Like
// balancer.Register, call it during initialization, before creating channels.
func RegisterBalancer() {
	balancer.Register(base.NewBalancerBuilder(BalancerName, weightedPickerBuilder{}, base.Config{HealthCheck: true}))
}

type weightedPickerBuilder struct{}

func (weightedPickerBuilder) Build(info base.PickerBuildInfo) balancer.Picker {
	if len(info.ReadySCs) == 0 {
		return base.NewErrPicker(balancer.ErrNoSubConnAvailable)
	}
	p := &weightedPicker{}
	for sc, sci := range info.ReadySCs {
		w := int64(1)
		if ai, ok := GetAddressInfo(sci.Address); ok && ai.Weight > 0 {
			w = int64(ai.Weight)
		}
		p.subConns = append(p.subConns, sc)
		p.weights = append(p.weights, w)
		p.total += w
	}
	p.current = make([]int64, len(p.weights))
	return p
}

// weightedPicker is smooth weighted round robin (as in nginx): over every window of `total` picks each
// SubConn gets exactly its weight, interleaved rather than in bursts.
type weightedPicker struct {
	subConns []balancer.SubConn
	weights  []int64
	total    int64

	mu      sync.Mutex
	current []int64
}

func (p *weightedPicker) Pick(balancer.PickInfo) (balancer.PickResult, error) {
	p.mu.Lock()
	best := 0
	for i, w := range p.weights {
		p.current[i] += w
		if p.current[i] > p.current[best] {
			best = i
		}
	}
	p.current[best] -= p.total
	p.mu.Unlock()
	return balancer.PickResult{SubConn: p.subConns[best]}, nil
}
