package gnaming

// Real grpc-go servers on loopback ports for the tests, counting the connections and RPCs they see,
// and clients dialled through the package's resolvers.

import (
	"context"
	"fmt"
	"net"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/serviceconfig"
	"google.golang.org/grpc/stats"
)

// testServer is a TestService that answers UnaryCall with its own address.
type testServer struct {
	testgrpc.UnimplementedTestServiceServer
	Addr  string
	srv   *grpc.Server
	rpcs  atomic.Int64
	conns atomic.Int64 // open right now
}

func (s *testServer) UnaryCall(context.Context, *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
	s.rpcs.Add(1)
	return &testpb.SimpleResponse{ServerId: s.Addr}, nil
}

func (s *testServer) TagRPC(ctx context.Context, _ *stats.RPCTagInfo) context.Context   { return ctx }
func (s *testServer) HandleRPC(context.Context, stats.RPCStats)                         {}
func (s *testServer) TagConn(ctx context.Context, _ *stats.ConnTagInfo) context.Context { return ctx }
func (s *testServer) HandleConn(_ context.Context, st stats.ConnStats) {
	switch st.(type) {
	case *stats.ConnBegin:
		s.conns.Add(1)
	case *stats.ConnEnd:
		s.conns.Add(-1)
	}
}

// newTestServer serves on 127.0.0.1 (on port, or a free one when port is 0).
func newTestServer(port int) (*testServer, error) {
	lis, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		return nil, err
	}
	s := &testServer{Addr: lis.Addr().String()}
	s.srv = grpc.NewServer(grpc.StatsHandler(s))
	testgrpc.RegisterTestServiceServer(s.srv, s)
	go s.srv.Serve(lis)
	return s, nil
}

// startServer is newTestServer, stopped when the test ends.
func startServer(t *testing.T, port int) *testServer {
	t.Helper()
	s, err := newTestServer(port)
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	t.Cleanup(s.srv.Stop)
	return s
}

// newClient makes a channel to target with the weighted balancer.
func newClient(t *testing.T, target string, opts ...grpc.DialOption) *grpc.ClientConn {
	t.Helper()
	opts = append([]grpc.DialOption{
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultServiceConfig(WeightedServiceConfig),
	}, opts...)
	conn, err := grpc.NewClient(target, opts...)
	if err != nil {
		t.Fatalf("grpc.NewClient(%q): %v", target, err)
	}
	return conn
}

// dial is newClient closed when the test ends, with a TestService client on it.
func dial(t *testing.T, target string, opts ...grpc.DialOption) (*grpc.ClientConn, testgrpc.TestServiceClient) {
	t.Helper()
	conn := newClient(t, target, opts...)
	t.Cleanup(func() { conn.Close() })
	return conn, testgrpc.NewTestServiceClient(conn)
}

// call makes one RPC and returns the address of the server that answered.
func call(ctx context.Context, c testgrpc.TestServiceClient) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	resp, err := c.UnaryCall(ctx, &testpb.SimpleRequest{FillServerId: true})
	if err != nil {
		return "", err
	}
	return resp.ServerId, nil
}

// waitFor polls cond every 20 ms until it holds or timeout passes, then fails with describe().
func waitFor(t *testing.T, timeout time.Duration, cond func() bool, describe func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", timeout, describe())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// serversAnswering sends `window` RPCs and returns the sorted set of servers that answered them.
func serversAnswering(ctx context.Context, c testgrpc.TestServiceClient, window int) ([]string, error) {
	seen := map[string]bool{}
	for range window {
		id, err := call(ctx, c)
		if err != nil {
			return nil, err
		}
		seen[id] = true
	}
	out := make([]string, 0, len(seen))
	for id := range seen {
		out = append(out, id)
	}
	sort.Strings(out)
	return out, nil
}

func sortedAddrs(servers ...*testServer) []string {
	out := make([]string, 0, len(servers))
	for _, s := range servers {
		out = append(out, s.Addr)
	}
	sort.Strings(out)
	return out
}

// recordingConn is a resolver.ClientConn that keeps every state and error the resolver reports.
type recordingConn struct {
	resolver.ClientConn // the deprecated methods; never called
	mu                  sync.Mutex
	states              []resolver.State
	errs                []error
	changed             chan struct{}
}

func newRecordingConn() *recordingConn {
	return &recordingConn{changed: make(chan struct{}, 1)}
}

func (c *recordingConn) notify() {
	select {
	case c.changed <- struct{}{}:
	default:
	}
}

func (c *recordingConn) UpdateState(s resolver.State) error {
	c.mu.Lock()
	c.states = append(c.states, s)
	c.mu.Unlock()
	c.notify()
	return nil
}

func (c *recordingConn) ReportError(err error) {
	c.mu.Lock()
	c.errs = append(c.errs, err)
	c.mu.Unlock()
	c.notify()
}

func (c *recordingConn) ParseServiceConfig(js string) *serviceconfig.ParseResult {
	return &serviceconfig.ParseResult{Err: fmt.Errorf("not parsed in tests: %s", js)}
}

// snapshot returns copies of what was reported so far.
func (c *recordingConn) snapshot() ([]resolver.State, []error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.states), slices.Clone(c.errs)
}

// waitState waits for a state for which ok holds and returns it.
func (c *recordingConn) waitState(t *testing.T, timeout time.Duration, ok func(resolver.State) bool) resolver.State {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		states, errs := c.snapshot()
		for _, s := range states {
			if ok(s) {
				return s
			}
		}
		select {
		case <-c.changed:
		case <-deadline.C:
			t.Fatalf("after %v no matching state; states: %v; errors: %v", timeout, describeStates(states), errs)
		}
	}
}

// addrList is a state's addresses as "addr#copy(w=weight)" strings in order, for messages.
func addrList(s resolver.State) []string {
	out := make([]string, 0, len(s.Addresses))
	for _, a := range s.Addresses {
		info, _ := GetAddressInfo(a)
		out = append(out, fmt.Sprintf("%s#%d(w=%d)", a.Addr, info.CopyIndex, info.Weight))
	}
	return out
}

// uniqueAddrs is the sorted set of a state's address strings.
func uniqueAddrs(s resolver.State) []string {
	var out []string
	for _, a := range s.Addresses {
		if !slices.Contains(out, a.Addr) {
			out = append(out, a.Addr)
		}
	}
	sort.Strings(out)
	return out
}

func describeStates(states []resolver.State) []string {
	out := make([]string, 0, len(states))
	for _, s := range states {
		out = append(out, fmt.Sprint(addrList(s)))
	}
	return out
}
