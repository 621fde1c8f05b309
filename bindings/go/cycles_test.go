package gnaming

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"google.golang.org/grpc/resolver"
	"net/url"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/connectivity"
)

// procStatus reads a "Name: value" field of /proc/self/status as a number (kB for memory fields).
func procStatus(t *testing.T, field string) int64 {
	t.Helper()
	f, err := os.Open("/proc/self/status")
	if err != nil {
		t.Fatalf("open /proc/self/status: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), ":")
		if !ok || name != field {
			continue
		}
		n, err := strconv.ParseInt(strings.Fields(value)[0], 10, 64)
		if err != nil {
			t.Fatalf("%s: %v", sc.Text(), err)
		}
		return n
	}
	t.Fatalf("no %s in /proc/self/status", field)
	return 0
}

// threadGoroutines is how many goroutines the cycles may leave behind without leaking: libgnaming
// calls back from its blocking-pool threads, which stay a while after their last call, and a C
// thread that has called into Go counts as one goroutine for as long as it lives.
const threadGoroutines = 4

type usage struct {
	goroutines int
	threads    int64
	rssKB      int64
	heapKB     int64
}

func measure(t *testing.T) usage {
	t.Helper()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return usage{
		goroutines: runtime.NumGoroutine(),
		threads:    procStatus(t, "Threads"),
		rssKB:      procStatus(t, "VmRSS"),
		heapKB:     int64(ms.HeapAlloc / 1024),
	}
}

// connectAndClose makes a channel to target, waits until it is READY (so the resolver was built and
// delivered) and closes it (so the resolver is closed).
func connectAndClose(t *testing.T, target string) {
	t.Helper()
	conn := newClient(t, target)
	conn.Connect()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for s := conn.GetState(); s != connectivity.Ready; s = conn.GetState() {
		if !conn.WaitForStateChange(ctx, s) {
			conn.Close()
			t.Fatalf("channel to %s stuck in %v", target, s)
		}
	}
	if err := conn.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

func TestThousandChannelBuildCloseCyclesLeakNoGoroutinesThreadsOrMemory(t *testing.T) {
	s := startServer(t, 0)
	target := fmt.Sprintf("pass:///%s#2", s.Addr)
	// Warm-up: grpc-go, the library's runtime and the allocator reach their steady size first.
	for range 100 {
		connectAndClose(t, target)
	}
	time.Sleep(200 * time.Millisecond)
	before := measure(t)

	const cycles = 1000
	start := time.Now()
	for range cycles {
		connectAndClose(t, target)
	}
	elapsed := time.Since(start)

	// grpc-go ends a closed channel's goroutines asynchronously: give them a bounded moment.
	var after usage
	for i := 0; i < 50; i++ {
		after = measure(t)
		if after.goroutines <= before.goroutines+threadGoroutines {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("%d cycles in %v; before %+v; after %+v; live callback handles %d", cycles, elapsed, before, after, liveHandles.Load())

	if n := liveHandles.Load(); n != 0 {
		t.Errorf("%d resolver closures were never dropped", n)
	}
	if after.goroutines > before.goroutines+threadGoroutines {
		t.Errorf("goroutines grew from %d to %d over %d cycles", before.goroutines, after.goroutines, cycles)
	}
	if after.threads > before.threads+4 {
		t.Errorf("OS threads grew from %d to %d over %d cycles", before.threads, after.threads, cycles)
	}
	if grown := after.heapKB - before.heapKB; grown > 2048 {
		t.Errorf("Go heap grew by %d KiB over %d cycles (before %d KiB, after %d KiB), want at most 2048", grown, cycles, before.heapKB, after.heapKB)
	}
	// The race detector keeps shadow state for every goroutine grpc-go ever started, so RSS says
	// something about leaks only in a build without it (make test-go runs this test both ways).
	if grown := after.rssKB - before.rssKB; !raceEnabled && grown > 4096 {
		t.Errorf("RSS grew by %d KiB over %d cycles (before %d KiB, after %d KiB), want at most 4096", grown, cycles, before.rssKB, after.rssKB)
	}
}

// statsCounter reads one counter of StatsJSON.
func statsCounter(t *testing.T, name string) int64 {
	t.Helper()
	js, err := StatsJSON()
	if err != nil {
		t.Fatalf("StatsJSON: %v", err)
	}
	var stats map[string]int64
	if err := json.Unmarshal([]byte(js), &stats); err != nil {
		t.Fatalf("StatsJSON returned %q: %v", js, err)
	}
	v, ok := stats[name]
	if !ok {
		t.Fatalf("StatsJSON has no %q: %s", name, js)
	}
	return v
}

func TestThousandEtcdResolverBuildCloseCyclesReleaseTheirWatches(t *testing.T) {
	etcdEndpoints(t)
	svc := serviceName(t)
	s := startServer(t, 0)
	register(t, svc, s, nil, 0)
	u, err := url.Parse(fmt.Sprintf("etcd://%s/%s", testCluster, svc))
	if err != nil {
		t.Fatal(err)
	}
	b := NewBuilder("etcd")
	cycle := func() {
		cc := newRecordingConn()
		r, err := b.Build(resolver.Target{URL: *u}, cc, resolver.BuildOptions{})
		if err != nil {
			t.Fatalf("Build: %v", err)
		}
		defer r.Close()
		cc.waitState(t, 10*time.Second, func(st resolver.State) bool { return len(st.Addresses) == 1 })
	}
	for range 50 {
		cycle()
	}
	before := measure(t)
	watchesBefore := statsCounter(t, "watches_active")

	const cycles = 1000
	start := time.Now()
	for range cycles {
		cycle()
	}
	elapsed := time.Since(start)

	var after usage
	watchesAfter := watchesBefore
	for i := 0; i < 50; i++ {
		after, watchesAfter = measure(t), statsCounter(t, "watches_active")
		if after.goroutines <= before.goroutines+threadGoroutines && watchesAfter <= watchesBefore {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("%d cycles in %v; before %+v, %d watches; after %+v, %d watches", cycles, elapsed, before, watchesBefore, after, watchesAfter)
	if n := liveHandles.Load(); n != 0 {
		t.Errorf("%d resolver closures were never dropped", n)
	}
	if watchesAfter > watchesBefore {
		t.Errorf("etcd watches grew from %d to %d over %d cycles", watchesBefore, watchesAfter, cycles)
	}
	if after.goroutines > before.goroutines+threadGoroutines {
		t.Errorf("goroutines grew from %d to %d over %d cycles", before.goroutines, after.goroutines, cycles)
	}
	if after.threads > before.threads+4 {
		t.Errorf("OS threads grew from %d to %d over %d cycles", before.threads, after.threads, cycles)
	}
	if grown := after.heapKB - before.heapKB; grown > 2048 {
		t.Errorf("Go heap grew by %d KiB over %d cycles (before %d KiB, after %d KiB), want at most 2048", grown, cycles, before.heapKB, after.heapKB)
	}
	if grown := after.rssKB - before.rssKB; !raceEnabled && grown > 4096 {
		t.Errorf("RSS grew by %d KiB over %d cycles (before %d KiB, after %d KiB), want at most 4096", grown, cycles, before.rssKB, after.rssKB)
	}
}
