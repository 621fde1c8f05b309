package main

// The two grpc-go resolvers under test, driven directly through resolver.Builder.Build with a
// recording ClientConn in place of a grpc.ClientConn: libgnaming's Go binding ("gnaming") and etcd's
// own client/v3/naming/resolver ("etcd"). The recorder takes the time as UpdateState is entered.

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	gnaming "github.com/libgnaming/libgnaming/bindings/go"
	clientv3 "go.etcd.io/etcd/client/v3"
	etcdresolver "go.etcd.io/etcd/client/v3/naming/resolver"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/serviceconfig"
)

// recorder is a resolver.ClientConn that hands every address list to onState.
type recorder struct {
	onState func(t int64, addrs []string)
}

func (r *recorder) UpdateState(s resolver.State) error {
	t := now()
	var addrs []string
	if len(s.Endpoints) > 0 {
		addrs = make([]string, 0, len(s.Endpoints))
		for _, e := range s.Endpoints {
			if len(e.Addresses) > 0 {
				addrs = append(addrs, e.Addresses[0].Addr)
			}
		}
	} else {
		addrs = make([]string, 0, len(s.Addresses))
		for _, a := range s.Addresses {
			addrs = append(addrs, a.Addr)
		}
	}
	r.onState(t, addrs)
	return nil
}

func (r *recorder) ReportError(err error)               {}
func (r *recorder) NewAddress(addrs []resolver.Address) {}
func (r *recorder) ParseServiceConfig(string) *serviceconfig.ParseResult {
	return &serviceconfig.ParseResult{Err: errors.New("service configs are not used here")}
}

// builder returns the resolver.Builder for impl, connected to endpoints, and a cleanup function.
func builder(impl, endpoints string) (resolver.Builder, func(), error) {
	eps, err := splitEndpoints(endpoints)
	if err != nil {
		return nil, nil, err
	}
	switch impl {
	case "gnaming":
		if err := gnaming.RegisterCluster("", gnaming.Cluster{Endpoints: eps}); err != nil {
			return nil, nil, err
		}
		return gnaming.NewBuilder("etcd"), func() {}, nil
	case "etcd":
		cli, err := clientv3.New(clientv3.Config{Endpoints: eps, DialTimeout: 5 * time.Second})
		if err != nil {
			return nil, nil, err
		}
		b, err := etcdresolver.NewBuilder(cli)
		if err != nil {
			cli.Close()
			return nil, nil, err
		}
		return b, func() { cli.Close() }, nil
	}
	return nil, nil, fmt.Errorf("unknown -impl %q (gnaming or etcd)", impl)
}

func build(b resolver.Builder, service string, cc resolver.ClientConn) (resolver.Resolver, error) {
	u, err := url.Parse("etcd:///" + service)
	if err != nil {
		return nil, err
	}
	return b.Build(resolver.Target{URL: *u}, cc, resolver.BuildOptions{})
}

// cmdObserve records every change one resolver delivers (the latency benchmark).
func cmdObserve(args []string) error {
	fs := flag.NewFlagSet("observe", flag.ExitOnError)
	endpoints := endpointsFlag(fs)
	impl := fs.String("impl", "", "gnaming or etcd")
	service := fs.String("service", "", "service name (the key prefix)")
	fs.Parse(args)
	b, cleanup, err := builder(*impl, *endpoints)
	if err != nil {
		return err
	}
	defer cleanup()
	ev := newEvents()
	first := make(chan struct{})
	var once sync.Once
	rec := &recorder{onState: func(t int64, addrs []string) {
		ev.diff(addrs, t)
		once.Do(func() { close(first) })
	}}
	r, err := build(b, *service, rec)
	if err != nil {
		return err
	}
	select {
	case <-first:
	case <-time.After(30 * time.Second):
		return fmt.Errorf("no first update in 30 s")
	}
	say("ready")
	for range stdinLines() {
	}
	r.Close()
	ev.dump()
	return nil
}

// inRange reports whether addrs is exactly the endpoints [lo, hi).
func inRange(addrs []string, lo, hi int) bool {
	if len(addrs) != hi-lo {
		return false
	}
	seen := make(map[int]bool, len(addrs))
	for _, a := range addrs {
		i := indexOf(a)
		if i < lo || i >= hi || seen[i] {
			return false
		}
		seen[i] = true
	}
	return true
}

// cmdScale times the first full list of a large prefix (from before the client exists), then,
// armed by a stdin line, how long and how much CPU it takes until the list equals [lo, hi).
// Prints "first NS CPU_NS RSS_KIB" (the process's CPU time and RSS once the list is there), "armed",
// "converged T CPU_NS UPDATES" (or "timeout ..." after 300 s).
func cmdScale(args []string) error {
	fs := flag.NewFlagSet("scale", flag.ExitOnError)
	endpoints := endpointsFlag(fs)
	impl := fs.String("impl", "", "gnaming or etcd")
	service := fs.String("service", "", "service name (the key prefix)")
	initial := fs.Int("initial", 0, "endpoints [0, initial) present at start")
	lo := fs.Int("lo", 0, "first endpoint after the burst")
	hi := fs.Int("hi", 0, "end of the endpoints after the burst")
	fs.Parse(args)
	t0 := now()
	b, cleanup, err := builder(*impl, *endpoints)
	if err != nil {
		return err
	}
	defer cleanup()
	var armed atomic.Bool
	var updates atomic.Int64
	var cpu0 int64
	firstFull := make(chan int64, 1)
	converged := make(chan [2]int64, 1)
	var firstOnce, convOnce sync.Once
	rec := &recorder{onState: func(t int64, addrs []string) {
		if !armed.Load() {
			if inRange(addrs, 0, *initial) {
				firstOnce.Do(func() { firstFull <- t })
			}
			return
		}
		updates.Add(1)
		if inRange(addrs, *lo, *hi) {
			convOnce.Do(func() { converged <- [2]int64{t, cpuNanos() - cpu0} })
		}
	}}
	r, err := build(b, *service, rec)
	if err != nil {
		return err
	}
	defer r.Close()
	select {
	case t := <-firstFull:
		rss, _ := procStatus()
		say("first %d %d %d", t-t0, cpuNanos(), rss)
	case <-time.After(60 * time.Second):
		return fmt.Errorf("no full list of %d in 60 s", *initial)
	}
	lines := stdinLines()
	if _, ok := <-lines; !ok {
		return nil
	}
	cpu0 = cpuNanos()
	armed.Store(true)
	say("armed")
	select {
	case c := <-converged:
		say("converged %d %d %d", c[0], c[1], updates.Load())
	case <-time.After(300 * time.Second):
		say("timeout %d updates", updates.Load())
	}
	for range lines {
	}
	return nil
}

// cmdMany starts n resolvers on one service in this process (with -distinct, each on its own
// service SERVICE/sNNNNN, as `populate -spread` writes them) and reports memory and threads before
// the first, after the first and after all n delivered a first list, as one JSON line; then it
// holds them until stdin closes (so etcd's watcher count can be read meanwhile).
func cmdMany(args []string) error {
	fs := flag.NewFlagSet("many", flag.ExitOnError)
	endpoints := endpointsFlag(fs)
	impl := fs.String("impl", "", "gnaming or etcd")
	service := fs.String("service", "", "service name (the key prefix)")
	n := fs.Int("n", 1000, "resolvers")
	distinct := fs.Bool("distinct", false, "one service per resolver")
	fs.Parse(args)
	out := map[string]any{}
	runtime.GC()
	out["rss_kib_before"], out["threads_before"] = procStatus()
	b, cleanup, err := builder(*impl, *endpoints)
	if err != nil {
		return err
	}
	defer cleanup()
	var got sync.WaitGroup
	start := func(k int) (resolver.Resolver, error) {
		var once sync.Once
		got.Add(1)
		name := *service
		if *distinct {
			name += "/" + serviceOf(k)
		}
		return build(b, name, &recorder{onState: func(int64, []string) { once.Do(got.Done) }})
	}
	wait := func() error {
		done := make(chan struct{})
		go func() { got.Wait(); close(done) }()
		select {
		case <-done:
			return nil
		case <-time.After(60 * time.Second):
			return fmt.Errorf("not every resolver had a first list after 60 s")
		}
	}
	var rs []resolver.Resolver
	defer func() {
		for _, r := range rs {
			r.Close()
		}
	}()
	r, err := start(0)
	if err != nil {
		return err
	}
	rs = append(rs, r)
	if err := wait(); err != nil {
		return err
	}
	runtime.GC()
	out["rss_kib_one"], out["threads_one"] = procStatus()
	for len(rs) < *n {
		r, err := start(len(rs))
		if err != nil {
			return err
		}
		rs = append(rs, r)
	}
	if err := wait(); err != nil {
		return err
	}
	runtime.GC()
	out["rss_kib_all"], out["threads_all"] = procStatus()
	out["goroutines_all"] = runtime.NumGoroutine()
	if *impl == "gnaming" {
		s, err := gnaming.StatsJSON()
		if err != nil {
			return err
		}
		var stats map[string]any
		if err := json.Unmarshal([]byte(s), &stats); err != nil {
			return err
		}
		out["stats"] = stats
	}
	line, _ := json.Marshal(out)
	say("%s", strings.TrimSpace(string(line)))
	for range stdinLines() {
	}
	return nil
}
