package gnaming

// Tests against the real 3-member etcd cluster that tests/harness/etcd_cluster.py starts around the
// test binary (GNAMING_TEST_ETCD_ENDPOINTS); `make test-go` runs them that way.

import (
	"bufio"
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/resolver"
)

// testCluster is the cluster name the etcd tests register their harness cluster under.
const testCluster = "harness"

// etcdEndpoints returns the harness cluster's endpoints, registered as testCluster and as the
// default cluster, or skips.
func etcdEndpoints(t *testing.T) []string {
	t.Helper()
	eps := os.Getenv("GNAMING_TEST_ETCD_ENDPOINTS")
	if eps == "" {
		t.Skip("no etcd: run under `python3 tests/harness/etcd_cluster.py run -- go test ...` (make test-go does)")
	}
	list := strings.Split(eps, ",")
	for _, name := range []string{testCluster, ""} {
		if err := RegisterCluster(name, Cluster{Endpoints: list, DialTimeout: 2 * time.Second, RequestTimeout: 2 * time.Second}); err != nil {
			t.Fatalf("RegisterCluster(%q): %v", name, err)
		}
	}
	return list
}

// serviceName is a service of the test's own, so tests never see each other's entries.
func serviceName(t *testing.T) string {
	return fmt.Sprintf("gotest/%s/%d", t.Name(), time.Now().UnixNano())
}

// register registers s under service and closes the registration when the test ends.
func register(t *testing.T, service string, s *testServer, metadata any, ttl time.Duration) *Registration {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	reg, err := Register(ctx, testCluster, service, s.Addr, metadata, ttl)
	if err != nil {
		t.Fatalf("Register(%s, %s): %v", service, s.Addr, err)
	}
	if st := reg.State(); st != Registered {
		t.Fatalf("state right after Register = %v, want registered", st)
	}
	t.Cleanup(func() { reg.Close() })
	return reg
}

// harness runs a subcommand of the etcd harness on the cluster the tests run under.
func harness(t *testing.T, args ...string) {
	t.Helper()
	script := filepath.Join("..", "..", "tests", "harness", "etcd_cluster.py")
	args = append([]string{script}, append(args, "--dir", os.Getenv("GNAMING_TEST_ETCD_DIR"))...)
	out, err := exec.Command("python3", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("etcd_cluster.py %v: %v\n%s", args[1:], err, out)
	}
}

// traffic sends RPCs back to back from one goroutine until stopped, counting answers per server
// and failures.
type traffic struct {
	mu       sync.Mutex
	answered map[string]int
	failures []error
	stop     chan struct{}
	done     chan struct{}
}

func startTraffic(client testgrpc.TestServiceClient) *traffic {
	tr := &traffic{answered: map[string]int{}, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(tr.done)
		for {
			select {
			case <-tr.stop:
				return
			default:
			}
			id, err := call(context.Background(), client)
			tr.mu.Lock()
			if err != nil {
				tr.failures = append(tr.failures, err)
			} else {
				tr.answered[id]++
			}
			tr.mu.Unlock()
			time.Sleep(2 * time.Millisecond)
		}
	}()
	return tr
}

// reset returns what was counted since the last reset and starts counting afresh.
func (tr *traffic) reset() (map[string]int, []error) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	a, f := tr.answered, tr.failures
	tr.answered, tr.failures = map[string]int{}, nil
	return a, f
}

func (tr *traffic) halt() {
	close(tr.stop)
	<-tr.done
}

func keys(m map[string]int) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// answeringServers waits until exactly want answer the traffic, judged over windows of 150 ms, and
// returns the RPCs that failed meanwhile.
func answeringServers(t *testing.T, tr *traffic, timeout time.Duration, want []string) []error {
	t.Helper()
	slices.Sort(want)
	deadline := time.Now().Add(timeout)
	var failed []error
	var got map[string]int
	tr.reset()
	for time.Now().Before(deadline) {
		time.Sleep(150 * time.Millisecond)
		var f []error
		got, f = tr.reset()
		failed = append(failed, f...)
		if slices.Equal(keys(got), want) {
			return failed
		}
	}
	t.Fatalf("after %v, servers answering:\n got  %v\n want %v", timeout, got, want)
	return nil
}

// serveInChild starts this test binary again as a server registered under service (see TestMain)
// and returns its address and process, killed when the test ends.
func serveInChild(t *testing.T, endpoints []string, service string, ttl time.Duration) (string, *os.Process) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s|%s|%s", childServerEnv, strings.Join(endpoints, ","), service, ttl))
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("child server said nothing: %v", err)
	}
	addr, ok := strings.CutPrefix(strings.TrimSpace(line), "registered ")
	if !ok {
		t.Fatalf("child server said %q", line)
	}
	return addr, cmd.Process
}

// observe builds a second resolver on target that records what it would hand grpc-go.
func observe(t *testing.T, target string) *recordingConn {
	t.Helper()
	_, cc := buildResolver(t, NewBuilder("etcd"), target)
	return cc
}

func TestEtcdClientFollowsServersThatRegisterStopDieAndJoin(t *testing.T) {
	endpoints := etcdEndpoints(t)
	svc := serviceName(t)
	const ttl = 2 * time.Second
	s1, s2 := startServer(t, 0), startServer(t, 0)
	reg1 := register(t, svc, s1, nil, ttl)
	register(t, svc, s2, nil, ttl)
	childAddr, child := serveInChild(t, endpoints, svc, ttl)

	target := "etcd:///" + svc // the default cluster
	watch := observe(t, target)
	_, client := dial(t, target, grpc.WithDefaultServiceConfig(`{"loadBalancingConfig":[{"round_robin":{}}]}`))
	tr := startTraffic(client)
	defer tr.halt()
	answeringServers(t, tr, 10*time.Second, []string{s1.Addr, s2.Addr, childAddr})

	// Graceful stop: deregistered first, so no RPC fails.
	_, failures := tr.reset()
	if err := GracefulStop(s1.srv, 300*time.Millisecond, reg1); err != nil {
		t.Fatalf("GracefulStop: %v", err)
	}
	failures = append(failures, answeringServers(t, tr, 5*time.Second, []string{s2.Addr, childAddr})...)
	if len(failures) > 0 {
		t.Fatalf("%d RPCs failed around a graceful stop, first: %v", len(failures), failures[0])
	}

	// Killed: the entry stays until its lease runs out, then goes.
	killed := time.Now()
	if err := child.Kill(); err != nil {
		t.Fatal(err)
	}
	want := []string{s2.Addr}
	watch.waitState(t, ttl+5*time.Second, func(s resolver.State) bool { return slices.Equal(uniqueAddrs(s), want) })
	t.Logf("the killed server's entry went %v after SIGKILL (TTL %v)", time.Since(killed).Round(10*time.Millisecond), ttl)
	answeringServers(t, tr, 5*time.Second, want)

	// A new server is picked up.
	s4 := startServer(t, 0)
	register(t, svc, s4, nil, ttl)
	answeringServers(t, tr, 5*time.Second, []string{s2.Addr, s4.Addr})
}

func TestRegistrationMetadataWeights1To3To6ShareThePicks(t *testing.T) {
	etcdEndpoints(t)
	svc := serviceName(t)
	servers := []*testServer{startServer(t, 0), startServer(t, 0), startServer(t, 0)}
	weights := []uint32{1, 3, 6}
	for i, s := range servers {
		register(t, svc, s, map[string]any{"weight": weights[i], "zone": "a"}, 0)
	}

	target := fmt.Sprintf("etcd://%s/%s", testCluster, svc)
	s := observe(t, target).waitState(t, 10*time.Second, func(s resolver.State) bool { return len(s.Addresses) == 3 })
	for _, a := range s.Addresses {
		info, _ := GetAddressInfo(a)
		var want uint32
		for i, srv := range servers {
			if srv.Addr == a.Addr {
				want = weights[i]
			}
		}
		if info.Weight != want || !strings.Contains(info.Metadata, `"weight":`) {
			t.Fatalf("%s: info %+v, want weight %d and the metadata JSON", a.Addr, info, want)
		}
	}

	_, client := dial(t, target)
	tr := startTraffic(client)
	answeringServers(t, tr, 10*time.Second, []string{servers[0].Addr, servers[1].Addr, servers[2].Addr})
	tr.halt()
	tr.reset()
	for _, srv := range servers {
		srv.rpcs.Store(0)
	}
	const total = 1000
	for i := range total {
		if _, err := call(context.Background(), client); err != nil {
			t.Fatalf("RPC %d: %v", i, err)
		}
	}
	// Weight is the share of picks: smooth weighted round robin gives exactly 100:300:600 unless a
	// SubConn changes state mid-run, hence the small tolerance.
	for i, srv := range servers {
		got, want := srv.rpcs.Load(), int64(weights[i])*total/10
		if got < want-20 || got > want+20 {
			t.Fatalf("weights 1:3:6 over %d RPCs: weight %d got %d RPCs, want %d±20", total, weights[i], got, want)
		}
		t.Logf("weight %d: %d of %d RPCs", weights[i], got, total)
	}
}

func TestRegisterGivesUpWhenTheContextEnds(t *testing.T) {
	// Nothing listens on port 1 of loopback, so the registration can only keep retrying.
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	reg, err := Register(ctx, "127.0.0.1:1", "gotest/unreachable", "127.0.0.1:9", nil, 0)
	if err == nil {
		reg.Close()
		t.Fatal("Register against an unreachable etcd succeeded")
	}
	if !strings.Contains(err.Error(), context.DeadlineExceeded.Error()) {
		t.Fatalf("Register error = %v, want the context's deadline", err)
	}
	if waited := time.Since(start); waited > 2*time.Second {
		t.Fatalf("Register returned %v after its 300 ms context ended", waited)
	}
}

func TestRegistrationCloseIsIdempotent(t *testing.T) {
	etcdEndpoints(t)
	reg := register(t, serviceName(t), startServer(t, 0), nil, 0)
	if err := reg.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := reg.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if st := reg.State(); st != Closed {
		t.Fatalf("state after Close = %v, want closed", st)
	}
}

// childServerEnv makes the test binary a registered server (see serveInChild).
const childServerEnv = "GNAMING_GO_TEST_CHILD_SERVER"

// serveAsChild runs when TestMain finds childServerEnv: serve, register, print the address, and
// wait to be killed.
func serveAsChild(spec string) {
	parts := strings.Split(spec, "|")
	ttl, err := time.ParseDuration(parts[2])
	if err != nil {
		panic(err)
	}
	if err := RegisterCluster(testCluster, Cluster{Endpoints: strings.Split(parts[0], ",")}); err != nil {
		panic(err)
	}
	s, err := newTestServer(0)
	if err != nil {
		panic(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if _, err := Register(ctx, testCluster, parts[1], s.Addr, nil, ttl); err != nil {
		panic(err)
	}
	fmt.Printf("registered %s\n", s.Addr)
	select {}
}

// closeCheckingConn counts updates, and those that arrive after the test marked it closed.
type closeCheckingConn struct {
	resolver.ClientConn
	closed      *atomic.Bool
	total, late *atomic.Int64
}

func (c closeCheckingConn) UpdateState(resolver.State) error {
	c.total.Add(1)
	if c.closed.Load() {
		c.late.Add(1)
	}
	return nil
}

func (c closeCheckingConn) ReportError(error) {
	c.total.Add(1)
	if c.closed.Load() {
		c.late.Add(1)
	}
}

func TestNoUpdateReachesTheClientConnAfterCloseReturns(t *testing.T) {
	etcdEndpoints(t)
	svc := serviceName(t)
	// Churn: entries come and go under svc all the time, so updates are in flight during each Close.
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			reg, err := Register(ctx, testCluster, svc, fmt.Sprintf("127.0.0.1:%d", 20000+i%20), nil, 0)
			cancel()
			if err == nil {
				reg.Close()
			}
		}
	}()
	defer func() { close(stop); <-done }()

	u, err := url.Parse(fmt.Sprintf("etcd://%s/%s", testCluster, svc))
	if err != nil {
		t.Fatal(err)
	}
	var total, late atomic.Int64
	for i := range 200 {
		closed := &atomic.Bool{}
		cc := closeCheckingConn{closed: closed, total: &total, late: &late}
		r, err := NewBuilder("etcd").Build(resolver.Target{URL: *u}, cc, resolver.BuildOptions{})
		if err != nil {
			t.Fatalf("Build: %v", err)
		}
		time.Sleep(time.Duration(i%6) * time.Millisecond)
		r.Close()
		closed.Store(true)
	}
	time.Sleep(200 * time.Millisecond)
	t.Logf("%d updates reached 200 resolvers before their Close", total.Load())
	if total.Load() < 100 {
		t.Fatalf("only %d updates over 200 resolvers: the churn did not keep updates in flight", total.Load())
	}
	if n := late.Load(); n > 0 {
		t.Fatalf("%d updates reached a ClientConn after its resolver's Close returned", n)
	}
	if n := liveHandles.Load(); n != 0 {
		t.Fatalf("%d resolver closures were never dropped", n)
	}
}
