// An etcd outage is not an empty service: with every etcd member stopped, the agent keeps the last
// assignment, grpc-go keeps calling the last known backends, and changes flow again once etcd is back.
package xdsgo

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	pb "github.com/libgnaming/libgnaming/demo/go/helloworld"
)

// etcdOutage is how long every etcd member stays stopped.
const etcdOutage = 10 * time.Second

// etcdRecoveryTimeout bounds the way back: members restarted, the agent's watch re-established, a new
// registration put and pushed.
const etcdRecoveryTimeout = 30 * time.Second

func TestEtcdDownFor10sFailsNoRPCThenAChangeIsFollowed(t *testing.T) {
	useHarnessEtcd(t)
	svc := serviceName(t)
	a, b := startGreeter(t), startGreeter(t)
	register(t, svc, a.Addr, nil, 0)
	register(t, svc, b.Addr, nil, 0)
	client := dialXDS(t, svc)
	waitAnswering(t, client, followTimeout, a.Addr, b.Addr)

	tr := startTraffic(client)
	defer tr.halt()
	harness(t, "stop-all")
	down := true
	t.Cleanup(func() {
		if down {
			harness(t, "start-all")
		}
	})
	tr.reset()
	time.Sleep(etcdOutage) // the outage itself: RPCs flow on meanwhile and are counted
	answered, failures := tr.reset()
	harness(t, "start-all")
	down = false

	total := 0
	for _, n := range answered {
		total += n
	}
	t.Logf("during %v with all etcd members stopped: %d RPCs answered (%v), %d failed", etcdOutage, total, answered, len(failures))
	if len(failures) > 0 {
		t.Fatalf("%d RPCs failed during the etcd outage, first: %v", len(failures), failures[0])
	}
	if got, want := sortedKeys(answered), sortedCopy([]string{a.Addr, b.Addr}); !slices.Equal(got, want) {
		t.Fatalf("greeters answering during the outage:\n want %v\n got  %v", want, answered)
	}

	tr.halt()
	c := startGreeter(t)
	putStart := time.Now()
	register(t, svc, c.Addr, nil, 0)
	put := time.Since(putStart)
	took := waitAnswering(t, client, etcdRecoveryTimeout, a.Addr, b.Addr, c.Addr)
	t.Logf("after etcd came back: a new registration put in %v, answering through xDS %v later",
		put.Round(time.Millisecond), took.Round(time.Millisecond))
}

// harness runs a subcommand of tests/harness/etcd_cluster.py on the cluster the tests run under.
func harness(t testing.TB, args ...string) {
	t.Helper()
	script := filepath.Join("..", "..", "harness", "etcd_cluster.py")
	args = append([]string{script}, append(args, "--dir", os.Getenv("GNAMING_TEST_ETCD_DIR"))...)
	out, err := exec.Command("python3", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("etcd_cluster.py %v: %v\n%s", args[1:], err, out)
	}
}

// traffic sends RPCs back to back from one goroutine until halted, counting answers per greeter and
// failures.
type traffic struct {
	mu       sync.Mutex
	answered map[string]int
	failures []error
	stop     chan struct{}
	done     chan struct{}
	halted   sync.Once
}

func startTraffic(client pb.GreeterClient) *traffic {
	tr := &traffic{answered: map[string]int{}, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(tr.done)
		for {
			select {
			case <-tr.stop:
				return
			default:
			}
			who, err := answeredBy(client)
			tr.mu.Lock()
			if err != nil {
				tr.failures = append(tr.failures, err)
			} else {
				tr.answered[who]++
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

// halt stops the traffic and waits for its last RPC; idempotent.
func (tr *traffic) halt() {
	tr.halted.Do(func() { close(tr.stop) })
	<-tr.done
}
