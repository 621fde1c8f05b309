package gnaming

// Drain and warm-up with real grpc-go servers and clients: a server that drains and then stops while
// clients call it fails no RPC, where a plain stop while registered does; a warm-up keeps a server out
// of the clients' lists until it ends.

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/resolver"
)

// rpcDelay keeps RPCs in flight at every server while the clients call back to back.
const rpcDelay = 20 * time.Millisecond

// timedServer is a testServer that counts the RPCs in flight and notes when the last one began.
type timedServer struct {
	*testServer
	inFlight atomic.Int64
	lastRPC  atomic.Int64 // UnixNano
}

func startTimedServer(t *testing.T) *timedServer {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	s := &timedServer{testServer: &testServer{Addr: lis.Addr().String()}}
	s.srv = grpc.NewServer(grpc.UnaryInterceptor(
		func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
			s.lastRPC.Store(time.Now().UnixNano())
			s.inFlight.Add(1)
			defer s.inFlight.Add(-1)
			time.Sleep(rpcDelay)
			return handler(ctx, req)
		}))
	testgrpc.RegisterTestServiceServer(s.srv, s.testServer)
	go s.srv.Serve(lis)
	t.Cleanup(s.srv.Stop)
	return s
}

func TestADrainingServerStopsWithoutFailingAnRPCWhereAPlainStopFailsThem(t *testing.T) {
	etcdEndpoints(t)
	svc := serviceName(t)
	target := "etcd:///" + svc
	servers := []*timedServer{startTimedServer(t), startTimedServer(t), startTimedServer(t)}
	regs := make([]*Registration, len(servers))
	for i, s := range servers {
		regs[i] = register(t, svc, s.testServer, nil, 0)
	}
	watch := observe(t, target)
	var traffics []*traffic
	for range 3 {
		_, client := dial(t, target)
		for range 4 {
			traffics = append(traffics, startTraffic(client))
		}
	}
	defer func() {
		for _, tr := range traffics {
			tr.halt()
		}
	}()
	waitFor(t, 10*time.Second, func() bool {
		return servers[0].rpcs.Load() > 0 && servers[1].rpcs.Load() > 0 && servers[2].rpcs.Load() > 0
	}, func() string {
		return fmt.Sprintf("RPCs per server: %d %d %d", servers[0].rpcs.Load(), servers[1].rpcs.Load(), servers[2].rpcs.Load())
	})
	without := func(addr string) func(resolver.State) bool {
		return func(s resolver.State) bool { return len(s.Addresses) > 0 && !slices.Contains(uniqueAddrs(s), addr) }
	}

	// Drained, then stopped: clients move away during the drain period; no RPC fails.
	drained := servers[0]
	for _, tr := range traffics {
		tr.reset()
	}
	start := time.Now()
	drainDone := make(chan error, 1)
	go func() { drainDone <- regs[0].Drain(context.Background(), time.Second) }()
	watch.waitState(t, 5*time.Second, without(drained.Addr))
	seen := time.Since(start)
	if err := <-drainDone; err != nil {
		t.Fatalf("Drain: %v", err)
	}
	took := time.Since(start)
	inFlight := drained.inFlight.Load()
	drained.srv.GracefulStop()
	last := time.Unix(0, drained.lastRPC.Load()).Sub(start)
	t.Logf("drain: a client saw the deletion %v after Drain began; the drained server's last RPC began %v after it; "+
		"Drain returned after %v with %d RPCs in flight there",
		seen.Round(time.Millisecond), last.Round(time.Millisecond), took.Round(time.Millisecond), inFlight)
	if took < time.Second {
		t.Errorf("Drain returned after %v, before its 1 s period", took)
	}
	// The deletion comes first and the period after it, so clients move while the server still answers,
	// and it is idle by the time it stops: even a hard stop would fail nothing.
	if seen > 500*time.Millisecond {
		t.Errorf("clients saw the deletion %v after Drain began, not at the start of its 1 s period", seen)
	}
	if inFlight != 0 {
		t.Errorf("%d RPCs were still in flight at the drained server when Drain returned", inFlight)
	}
	// A pick made just before the client's list changed may still begin a moment later.
	if slack := 250 * time.Millisecond; last > seen+slack {
		t.Errorf("the drained server began an RPC %v after Drain began, later than the %v its clients took to see "+
			"the deletion (+%v)", last, seen, slack)
	}
	// RPCs still under way at the others when it stopped count too.
	time.Sleep(200 * time.Millisecond)
	var failed []error
	answered := 0
	for _, tr := range traffics {
		a, f := tr.reset()
		failed = append(failed, f...)
		for _, n := range a {
			answered += n
		}
	}
	if len(failed) > 0 {
		t.Fatalf("%d RPCs of %d failed while a server drained and stopped, first: %v", len(failed), answered+len(failed), failed[0])
	}
	t.Logf("drain: %d RPCs answered, 0 failed", answered)

	// The contrast: stopped while still registered, with RPCs in flight there, they fail, and clients
	// keep the dead address in their lists.
	stopped := servers[1]
	waitFor(t, 5*time.Second, func() bool { return stopped.inFlight.Load() > 0 },
		func() string { return "no RPC in flight at the server to stop" })
	stopped.srv.Stop()
	time.Sleep(300 * time.Millisecond)
	failed = nil
	for _, tr := range traffics {
		_, f := tr.reset()
		failed = append(failed, f...)
	}
	states, _ := watch.snapshot()
	listed := slices.Contains(uniqueAddrs(states[len(states)-1]), stopped.Addr)
	t.Logf("plain stop while registered: %d RPCs failed; the stopped address still listed 300 ms later: %v",
		len(failed), listed)
	if len(failed) == 0 || !listed {
		t.Fatalf("a plain stop while registered should fail the RPCs in flight and leave the address listed: "+
			"%d failed, listed %v", len(failed), listed)
	}
}

func TestAWarmUpKeepsTheServerOutOfTheClientsListsUntilItEnds(t *testing.T) {
	etcdEndpoints(t)
	svc := serviceName(t)
	s := startServer(t, 0)
	watch := observe(t, "etcd:///"+svc)
	listed := func(st resolver.State) bool { return slices.Contains(uniqueAddrs(st), s.Addr) }
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	const warmup = 600 * time.Millisecond
	start := time.Now()
	type result struct {
		reg *Registration
		err error
		at  time.Duration
	}
	registered := make(chan result, 1)
	go func() {
		reg, err := Register(ctx, testCluster, svc, s.Addr, nil, 0, WithWarmup(warmup))
		registered <- result{reg, err, time.Since(start)}
	}()
	time.Sleep(warmup - 200*time.Millisecond)
	if states, _ := watch.snapshot(); slices.ContainsFunc(states, listed) {
		t.Fatalf("listed %v after Register began, within its %v warm-up: %v", time.Since(start), warmup, describeStates(states))
	}
	watch.waitState(t, 5*time.Second, listed)
	r := <-registered
	if r.err != nil {
		t.Fatalf("Register: %v", r.err)
	}
	t.Logf("listed within %v of Register's start (warm-up %v); Register returned after %v",
		time.Since(start).Round(time.Millisecond), warmup, r.at.Round(time.Millisecond))
	if r.at < warmup {
		t.Fatalf("Register returned after %v, within the %v warm-up", r.at, warmup)
	}
	_, err := Register(ctx, testCluster, svc, s.Addr, nil, 0, WithWarmup(-time.Second))
	if want := "warm-up -1s is out of range"; err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("a negative warm-up: error %v, want one saying %q", err, want)
	}
	if err := r.reg.Drain(ctx, 0); err != nil {
		t.Fatalf("Drain: %v", err)
	}
	if err := r.reg.Drain(ctx, time.Second); err != nil || r.reg.State() != Closed {
		t.Fatalf("a second Drain: %v, state %v", err, r.reg.State())
	}
}
