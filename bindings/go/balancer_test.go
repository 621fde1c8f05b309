package gnaming

import (
	"context"
	"fmt"
	"math"
	"testing"
	"time"

	"google.golang.org/grpc/balancer"
	"google.golang.org/grpc/balancer/base"
	"google.golang.org/grpc/resolver"
)

func TestPassCopiesOpenOneConnectionEachAndSplitTrafficTwoToOne(t *testing.T) {
	a, b := startServer(t, 0), startServer(t, 0)
	_, client := dial(t, fmt.Sprintf("pass:///%s#2,%s#1", a.Addr, b.Addr))
	ctx := context.Background()

	// Warm up until all three connections are open and the picker spreads a window of 30 RPCs
	// exactly 20:10, so the measurement below sees the steady state.
	warm := false
	for round := 0; round < 100 && !warm; round++ {
		a.rpcs.Store(0)
		b.rpcs.Store(0)
		if _, err := serversAnswering(ctx, client, 30); err != nil {
			t.Fatalf("warm-up RPC: %v", err)
		}
		warm = a.conns.Load() == 2 && b.conns.Load() == 1 && a.rpcs.Load() == 20 && b.rpcs.Load() == 10
		if !warm {
			time.Sleep(20 * time.Millisecond)
		}
	}
	if !warm {
		t.Fatalf("never warmed up: connections a=%d b=%d (want 2 and 1), last window of 30 RPCs a=%d b=%d (want 20 and 10)",
			a.conns.Load(), b.conns.Load(), a.rpcs.Load(), b.rpcs.Load())
	}

	a.rpcs.Store(0)
	b.rpcs.Store(0)
	const total = 3000
	for i := range total {
		if _, err := call(ctx, client); err != nil {
			t.Fatalf("RPC %d: %v", i, err)
		}
	}
	gotA, gotB := a.rpcs.Load(), b.rpcs.Load()
	if gotA+gotB != total {
		t.Fatalf("servers saw %d+%d RPCs, want %d in all", gotA, gotB, total)
	}
	share := float64(gotA) / total
	if math.Abs(share-2.0/3) > 0.1*2.0/3 {
		t.Fatalf("a got %d and b %d of %d RPCs (share %.3f), want 2:1 within ±10%%", gotA, gotB, total, share)
	}
	if ca, cb := a.conns.Load(), b.conns.Load(); ca != 2 || cb != 1 {
		t.Fatalf("server-side connections a=%d b=%d, want 2 and 1", ca, cb)
	}
}

// fakeSubConn tells SubConns apart in picker tests.
type fakeSubConn struct {
	balancer.SubConn
	name string
}

func TestPickerSpreadsPicksByWeightInEveryWindow(t *testing.T) {
	weights := map[string]uint32{"a": 5, "b": 3, "c": 1, "d": 1}
	info := base.PickerBuildInfo{ReadySCs: map[balancer.SubConn]base.SubConnInfo{}}
	total := 0
	for name, w := range weights {
		addr := resolver.Address{Addr: name, Attributes: attributesFor(AddressInfo{Weight: w})}
		info.ReadySCs[&fakeSubConn{name: name}] = base.SubConnInfo{Address: addr}
		total += int(w)
	}
	p := weightedPickerBuilder{}.Build(info)
	for window := range 20 {
		got := map[string]uint32{}
		for range total {
			res, err := p.Pick(balancer.PickInfo{})
			if err != nil {
				t.Fatal(err)
			}
			got[res.SubConn.(*fakeSubConn).name]++
		}
		for name, w := range weights {
			if got[name] != w {
				t.Fatalf("window %d of %d picks: got %v, want %v", window, total, got, weights)
			}
		}
	}
}

func TestPickerWithoutReadySubConnsAsksToWait(t *testing.T) {
	p := weightedPickerBuilder{}.Build(base.PickerBuildInfo{})
	if _, err := p.Pick(balancer.PickInfo{}); err != balancer.ErrNoSubConnAvailable {
		t.Fatalf("Pick with nothing ready = %v, want %v", err, balancer.ErrNoSubConnAvailable)
	}
}
