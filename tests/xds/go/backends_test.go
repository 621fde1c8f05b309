// Greeter backends registered through the Go binding (in this process, or as child processes that a
// test can SIGKILL), the connections they accept, and xds:/// clients that ask them who answered.
package xdsgo

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	gnaming "github.com/libgnaming/libgnaming/bindings/go"
	pb "github.com/libgnaming/libgnaming/demo/go/helloworld"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/stats"
)

// childServerEnv, when set to a childSpec in JSON, makes the test binary a greeter server.
const childServerEnv = "GNAMING_XDS_GO_CHILD_SERVER"

// registerTimeout bounds one registration (the etcd put and the wait for it).
const registerTimeout = 15 * time.Second

// rpcTimeout bounds one RPC; a healthy loopback RPC takes well under a millisecond.
const rpcTimeout = 5 * time.Second

// greeter answers SayHello with its own address and remembers the peer address of every connection
// it accepts (a new client connection is a new peer port).
type greeter struct {
	pb.UnimplementedGreeterServer
	Addr  string
	srv   *grpc.Server
	rpcs  atomic.Int64
	mu    sync.Mutex
	peers []string
}

func (g *greeter) SayHello(context.Context, *pb.HelloRequest) (*pb.HelloReply, error) {
	g.rpcs.Add(1)
	return &pb.HelloReply{Message: g.Addr}, nil
}

func (g *greeter) TagConn(ctx context.Context, info *stats.ConnTagInfo) context.Context {
	g.mu.Lock()
	g.peers = append(g.peers, info.RemoteAddr.String())
	g.mu.Unlock()
	return ctx
}
func (g *greeter) HandleConn(context.Context, stats.ConnStats)                     {}
func (g *greeter) TagRPC(ctx context.Context, _ *stats.RPCTagInfo) context.Context { return ctx }
func (g *greeter) HandleRPC(context.Context, stats.RPCStats)                       {}

// connections returns the peer addresses of every connection accepted so far.
func (g *greeter) connections() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Clone(g.peers)
}

// newGreeter serves on addr ("127.0.0.1:0" for a free port).
func newGreeter(addr string) (*greeter, error) {
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	g := &greeter{Addr: lis.Addr().String()}
	g.srv = grpc.NewServer(grpc.StatsHandler(g))
	pb.RegisterGreeterServer(g.srv, g)
	go g.srv.Serve(lis)
	return g, nil
}

// startGreeter is newGreeter on a free loopback port, stopped when the test ends.
func startGreeter(t testing.TB) *greeter {
	t.Helper()
	g, err := newGreeter("127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	t.Cleanup(g.srv.Stop)
	return g
}

// useHarnessEtcd makes the harness cluster the binding's default cluster, the one the agent reads.
func useHarnessEtcd(t testing.TB) {
	t.Helper()
	if err := useEtcd(); err != nil {
		t.Fatal(err)
	}
}

func useEtcd() error {
	eps := os.Getenv("GNAMING_TEST_ETCD_ENDPOINTS")
	if eps == "" {
		return fmt.Errorf("GNAMING_TEST_ETCD_ENDPOINTS is not set: run under tests/harness/etcd_cluster.py")
	}
	c := gnaming.Cluster{Endpoints: strings.Split(eps, ","), DialTimeout: 2 * time.Second, RequestTimeout: 2 * time.Second}
	if err := gnaming.RegisterCluster("", c); err != nil {
		return fmt.Errorf("RegisterCluster: %w", err)
	}
	return nil
}

// serviceName is a service of the test's own, so tests never see each other's entries; a plain name,
// so xds:///NAME means etcd:///NAME in the agent.
func serviceName(t testing.TB) string {
	name := strings.NewReplacer("/", "-", "_", "-").Replace(t.Name())
	return fmt.Sprintf("xdsgo-%s-%d", strings.ToLower(name), time.Now().UnixNano())
}

// register puts addr under service in etcd and withdraws it when the test ends (Close is idempotent).
func register(t testing.TB, service, addr string, metadata any, ttl time.Duration) *gnaming.Registration {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), registerTimeout)
	defer cancel()
	reg, err := gnaming.Register(ctx, "", service, addr, metadata, ttl)
	if err != nil {
		t.Fatalf("Register(%s, %s): %v", service, addr, err)
	}
	t.Cleanup(func() { reg.Close() })
	return reg
}

// childSpec is what a child greeter registers.
type childSpec struct {
	Service string `json:"service"`
	TTLms   int64  `json:"ttl_ms"`
}

// childGreeter is a greeter in a process of its own, registered in etcd by that process.
type childGreeter struct {
	Addr string
	cmd  *exec.Cmd
	done chan struct{}
}

// startChildGreeter runs this test binary as a greeter that registers itself under service with ttl,
// and waits until it is registered. It is killed when the test ends (and when this process dies).
func startChildGreeter(t testing.TB, service string, ttl time.Duration) *childGreeter {
	t.Helper()
	spec, _ := json.Marshal(childSpec{Service: service, TTLms: ttl.Milliseconds()})
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), childServerEnv+"="+string(spec))
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting a child greeter: %v", err)
	}
	c := &childGreeter{cmd: cmd, done: make(chan struct{})}
	lines := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(out).ReadString('\n')
		lines <- strings.TrimSpace(line)
	}()
	go func() { cmd.Wait(); close(c.done) }()
	t.Cleanup(c.kill)
	select {
	case line := <-lines:
		addr, ok := strings.CutPrefix(line, "registered ")
		if !ok {
			t.Fatalf("child greeter said %q, want \"registered ADDR\"", line)
		}
		c.Addr = addr
	case <-time.After(registerTimeout + 5*time.Second):
		t.Fatalf("child greeter not registered after %v", registerTimeout+5*time.Second)
	}
	return c
}

// kill sends SIGKILL and waits for the process to be gone; its etcd lease is left to expire.
func (c *childGreeter) kill() {
	c.cmd.Process.Kill()
	<-c.done
}

// serveAsChild is the child greeter's main: serve, register, say so, then wait to be killed.
func serveAsChild(specJSON string) {
	var spec childSpec
	if err := json.Unmarshal([]byte(specJSON), &spec); err != nil {
		fmt.Fprintf(os.Stderr, "child greeter: bad spec %q: %v\n", specJSON, err)
		os.Exit(2)
	}
	if err := useEtcd(); err != nil {
		fmt.Fprintf(os.Stderr, "child greeter: %v\n", err)
		os.Exit(2)
	}
	g, err := newGreeter("127.0.0.1:0")
	if err != nil {
		fmt.Fprintf(os.Stderr, "child greeter: %v\n", err)
		os.Exit(2)
	}
	ctx, cancel := context.WithTimeout(context.Background(), registerTimeout)
	_, err = gnaming.Register(ctx, "", spec.Service, g.Addr, nil, time.Duration(spec.TTLms)*time.Millisecond)
	cancel()
	if err != nil {
		fmt.Fprintf(os.Stderr, "child greeter: register: %v\n", err)
		os.Exit(2)
	}
	fmt.Printf("registered %s\n", g.Addr)
	select {}
}

// dialXDS makes a grpc-go channel to xds:///service (resolved through the agent's bootstrap), closed
// when the test ends.
func dialXDS(t testing.TB, service string) pb.GreeterClient {
	t.Helper()
	target := "xds:///" + service
	conn, err := grpc.NewClient(target, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatalf("grpc.NewClient(%q): %v", target, err)
	}
	t.Cleanup(func() { conn.Close() })
	return pb.NewGreeterClient(conn)
}

// answeredBy makes one RPC and returns the address of the greeter that answered it.
func answeredBy(c pb.GreeterClient) (string, error) {
	return answeredByCtx(context.Background(), c)
}

func answeredByCtx(ctx context.Context, c pb.GreeterClient) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, rpcTimeout)
	defer cancel()
	r, err := c.SayHello(ctx, &pb.HelloRequest{Name: "xds-go"})
	if err != nil {
		return "", err
	}
	return r.GetMessage(), nil
}

// window sends up to n RPCs, none past deadline, and returns the sorted set of greeters that
// answered and the failures.
func window(c pb.GreeterClient, n int, deadline time.Time) ([]string, []error) {
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	seen := map[string]bool{}
	var errs []error
	for i := 0; i < n && ctx.Err() == nil; i++ {
		who, err := answeredByCtx(ctx, c)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		seen[who] = true
	}
	return sortedKeys(seen), errs
}

// pollInterval is the pause between two looks at a condition that is not there yet.
const pollInterval = 20 * time.Millisecond

// waitAnswering polls until a window of RPCs is answered by exactly want (and nothing fails), then
// checks that a second window says the same, and returns how long it took. grpc-go's xDS balancer
// picks a locality at random by weight (weighted_target), and each endpoint is a locality of its own:
// a window of 20n+20 RPCs misses one of n equally weighted backends with a probability below 1e-9.
func waitAnswering(t testing.TB, c pb.GreeterClient, timeout time.Duration, want ...string) time.Duration {
	t.Helper()
	return waitAnsweringWithin(t, c, timeout, 20*len(want)+20, want...)
}

// waitAnsweringWithin is waitAnswering with windows of n RPCs.
func waitAnsweringWithin(t testing.TB, c pb.GreeterClient, timeout time.Duration, n int, want ...string) time.Duration {
	t.Helper()
	want = sortedCopy(want)
	start := time.Now()
	deadline := start.Add(timeout)
	var got []string
	var errs []error
	for time.Now().Before(deadline) {
		got, errs = window(c, n, deadline)
		if len(errs) == 0 && slices.Equal(got, want) {
			took := time.Since(start)
			if again, errs := window(c, n, time.Now().Add(timeout)); len(errs) > 0 || !slices.Equal(again, want) {
				t.Fatalf("answering greeters changed back:\n want %v\n got  %v (failures: %v)", want, again, errs)
			}
			return took
		}
		time.Sleep(pollInterval)
	}
	t.Fatalf("after %v, the greeters answering xds:/// RPCs are not the registered ones:\n want %v\n got  %v (last window's failures: %d, first: %v)",
		timeout, want, got, len(errs), firstErr(errs))
	return 0
}

func firstErr(errs []error) error {
	if len(errs) == 0 {
		return nil
	}
	return errs[0]
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func sortedCopy(s []string) []string {
	out := slices.Clone(s)
	sort.Strings(out)
	return out
}
