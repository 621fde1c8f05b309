// gobench: the Go side of the benchmark suite (bench/bench.py drives it). One binary, one
// subcommand per role: the writer that changes etcd, the raw clientv3 watch that is the latency
// floor, and observers that run libgnaming's Go binding or etcd's own naming resolver against a
// recording resolver.ClientConn. Times are CLOCK_MONOTONIC nanoseconds, comparable across processes.
//
// Observers speak a line protocol on stdout: "ready" once the first list arrived, then, after stdin
// closes, one line per change seen ("put ADDR T" / "del ADDR T") and "end".
package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	cmd, args := os.Args[1], os.Args[2:]
	var err error
	switch cmd {
	case "write":
		err = cmdWrite(args)
	case "populate":
		err = cmdPopulate(args)
	case "burst":
		err = cmdBurst(args)
	case "step":
		err = cmdStep(args)
	case "raw":
		err = cmdRaw(args)
	case "observe":
		err = cmdObserve(args)
	case "scale":
		err = cmdScale(args)
	case "many":
		err = cmdMany(args)
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "gobench %s: %v\n", cmd, err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: gobench write|populate|burst|step|raw|observe|scale|many [flags]")
	os.Exit(2)
}

// now is CLOCK_MONOTONIC, the clock the C and Python observers read too.
func now() int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		panic(err)
	}
	return ts.Nano()
}

// cpuNanos is the process's user + system CPU time.
func cpuNanos() int64 {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		panic(err)
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// addrOf is the address of endpoint i: distinct IPv4 addresses on one port, parseable back.
func addrOf(i int) string {
	return fmt.Sprintf("10.%d.%d.%d:8000", (i>>16)&255, (i>>8)&255, i&255)
}

// indexOf inverts addrOf; -1 for anything else.
func indexOf(addr string) int {
	rest, ok := strings.CutPrefix(addr, "10.")
	if !ok {
		return -1
	}
	rest, ok = strings.CutSuffix(rest, ":8000")
	if !ok {
		return -1
	}
	parts := strings.Split(rest, ".")
	if len(parts) != 3 {
		return -1
	}
	i := 0
	for _, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 || n > 255 {
			return -1
		}
		i = i<<8 | n
	}
	return i
}

// valueOf is etcd's naming JSON, which both resolvers read.
func valueOf(addr string) string {
	return `{"Op":0,"Addr":"` + addr + `"}`
}

func endpointsFlag(fs *flag.FlagSet) *string {
	return fs.String("endpoints", "", "etcd endpoints, host:port,host:port")
}

func splitEndpoints(s string) ([]string, error) {
	if s == "" {
		return nil, fmt.Errorf("-endpoints is required")
	}
	return strings.Split(s, ","), nil
}

// events collects changes seen by an observer until stdin closes.
type events struct {
	mu    sync.Mutex
	lines []string
	prev  map[string]bool
}

func newEvents() *events { return &events{prev: map[string]bool{}} }

func (e *events) add(op, addr string, t int64) {
	e.lines = append(e.lines, op+" "+addr+" "+strconv.FormatInt(t, 10))
}

// diff records what changed between the previous list and addrs, all at time t.
func (e *events) diff(addrs []string, t int64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	cur := make(map[string]bool, len(addrs))
	for _, a := range addrs {
		cur[a] = true
		if !e.prev[a] {
			e.add("put", a, t)
		}
	}
	for a := range e.prev {
		if !cur[a] {
			e.add("del", a, t)
		}
	}
	e.prev = cur
}

func (e *events) dump() {
	e.mu.Lock()
	defer e.mu.Unlock()
	w := bufio.NewWriter(os.Stdout)
	for _, l := range e.lines {
		w.WriteString(l)
		w.WriteByte('\n')
	}
	w.WriteString("end\n")
	w.Flush()
}

// waitStdin returns each stdin line on the channel; it is closed at EOF.
func stdinLines() <-chan string {
	ch := make(chan string)
	go func() {
		sc := bufio.NewScanner(os.Stdin)
		for sc.Scan() {
			ch <- sc.Text()
		}
		close(ch)
	}()
	return ch
}

func say(format string, args ...any) {
	fmt.Printf(format+"\n", args...)
}

// rssKiB and threads read /proc/self/status.
func procStatus() (rssKiB, threads int) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return -1, -1
	}
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) < 2 {
			continue
		}
		switch f[0] {
		case "VmRSS:":
			rssKiB, _ = strconv.Atoi(f[1])
		case "Threads:":
			threads, _ = strconv.Atoi(f[1])
		}
	}
	return rssKiB, threads
}

func sleepUntil(deadline time.Time) {
	if d := time.Until(deadline); d > 0 {
		time.Sleep(d)
	}
}
