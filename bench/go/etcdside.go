package main

// The etcd side: the writer whose puts start every latency measurement, bulk population, the
// change burst, the one-change-at-a-time writer, and the raw clientv3 watch that is the latency floor.

import (
	"context"
	"flag"
	"fmt"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

func newClient(endpoints string) (*clientv3.Client, error) {
	eps, err := splitEndpoints(endpoints)
	if err != nil {
		return nil, err
	}
	return clientv3.New(clientv3.Config{Endpoints: eps, DialTimeout: 5 * time.Second})
}

// cmdWrite makes `changes` sequential changes under prefix: put a0, then put a(k) and delete
// a(k-1) in turn, then delete the last; every address is put once and deleted once, so (op, addr)
// names a change. Prints "put|del ADDR T_START T_DONE" per change.
func cmdWrite(args []string) error {
	fs := flag.NewFlagSet("write", flag.ExitOnError)
	endpoints := endpointsFlag(fs)
	prefix := fs.String("prefix", "", "key prefix, without the trailing /")
	changes := fs.Int("changes", 2000, "number of changes (puts plus deletes; rounded up to even)")
	interval := fs.Duration("interval", 10*time.Millisecond, "pause between the end of one change and the next")
	fs.Parse(args)
	cli, err := newClient(*endpoints)
	if err != nil {
		return err
	}
	defer cli.Close()
	puts := (*changes + 1) / 2
	type change struct {
		op, addr    string
		start, done int64
	}
	out := make([]change, 0, 2*puts)
	do := func(op string, i int) error {
		addr := addrOf(i)
		key := *prefix + "/" + addr
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		start := now()
		var err error
		if op == "put" {
			_, err = cli.Put(ctx, key, valueOf(addr))
		} else {
			_, err = cli.Delete(ctx, key)
		}
		out = append(out, change{op, addr, start, now()})
		return err
	}
	for k := 0; k < puts; k++ {
		if err := do("put", k); err != nil {
			return err
		}
		time.Sleep(*interval)
		if k > 0 {
			if err := do("del", k-1); err != nil {
				return err
			}
			time.Sleep(*interval)
		}
	}
	if err := do("del", puts-1); err != nil {
		return err
	}
	for _, c := range out {
		say("%s %s %d %d", c.op, c.addr, c.start, c.done)
	}
	return nil
}

// parallel runs f(i) for i in [from, to) on conc goroutines.
func parallel(from, to, conc int, f func(i int) error) error {
	var wg sync.WaitGroup
	next := make(chan int)
	errs := make(chan error, conc)
	for w := 0; w < conc; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := f(i); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	for i := from; i < to; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
	close(errs)
	return <-errs
}

func putAddr(cli *clientv3.Client, prefix string, i int) error {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	addr := addrOf(i)
	_, err := cli.Put(ctx, prefix+"/"+addr, valueOf(addr))
	return err
}

func delAddr(cli *clientv3.Client, prefix string, i int) error {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err := cli.Delete(ctx, prefix+"/"+addrOf(i))
	return err
}

func countPrefix(cli *clientv3.Client, prefix string) (int64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	r, err := cli.Get(ctx, prefix+"/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		return 0, err
	}
	return r.Count, nil
}

// cmdPopulate puts endpoints [from, to) under prefix, `batch` puts to a transaction (etcd 3.4 allows
// 128 operations in one), `conc` transactions in flight. With -meta BYTES each value carries that many
// bytes of metadata; with -spread P endpoint i goes under prefix/sNNNNN for service i mod P instead
// (one service each for [0, P)). Prints "populated COUNT NS" (keys under prefix, time taken).
func cmdPopulate(args []string) error {
	fs := flag.NewFlagSet("populate", flag.ExitOnError)
	endpoints := endpointsFlag(fs)
	prefix := fs.String("prefix", "", "key prefix")
	from := fs.Int("from", 0, "first index")
	to := fs.Int("to", 0, "end index (exclusive)")
	conc := fs.Int("conc", 32, "transactions in flight")
	batch := fs.Int("batch", 1, "puts per transaction (at most 128)")
	meta := fs.Int("meta", 0, "bytes of metadata per value")
	spread := fs.Int("spread", 0, "services the endpoints are spread over (0: all under prefix)")
	fs.Parse(args)
	cli, err := newClient(*endpoints)
	if err != nil {
		return err
	}
	defer cli.Close()
	pad := strings.Repeat("m", *meta)
	put := func(i int) clientv3.Op {
		addr := addrOf(i)
		key := *prefix + "/" + addr
		if *spread > 0 {
			key = fmt.Sprintf("%s/%s/%s", *prefix, serviceOf(i%*spread), addr)
		}
		if *meta > 0 {
			return clientv3.OpPut(key, `{"Op":0,"Addr":"`+addr+`","Metadata":{"pad":"`+pad+`"}}`)
		}
		return clientv3.OpPut(key, valueOf(addr))
	}
	if *batch < 1 {
		*batch = 1
	}
	start := now()
	batches := (*to - *from + *batch - 1) / *batch
	err = parallel(0, batches, *conc, func(b int) error {
		lo := *from + b**batch
		hi := min(lo+*batch, *to)
		ops := make([]clientv3.Op, 0, hi-lo)
		for i := lo; i < hi; i++ {
			ops = append(ops, put(i))
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		_, err := cli.Txn(ctx).Then(ops...).Commit()
		return err
	})
	took := now() - start
	if err != nil {
		return err
	}
	n, err := countPrefix(cli, *prefix)
	if err != nil {
		return err
	}
	say("populated %d %d", n, took)
	return nil
}

// serviceOf names service k of a -spread population: zero-padded, so no name is a prefix of another.
func serviceOf(k int) string {
	return fmt.Sprintf("s%05d", k)
}

// cmdStep makes one change per stdin line, "put I" or "del I" (endpoint I under prefix), and answers
// each with "put|del ADDR T_START T_DONE" once etcd acknowledged it; bench.py sends the next line
// only after an observer saw the change. Exits at EOF.
func cmdStep(args []string) error {
	fs := flag.NewFlagSet("step", flag.ExitOnError)
	endpoints := endpointsFlag(fs)
	prefix := fs.String("prefix", "", "key prefix")
	fs.Parse(args)
	cli, err := newClient(*endpoints)
	if err != nil {
		return err
	}
	defer cli.Close()
	// Warm the connections so the first change does not include a dial.
	if _, err := countPrefix(cli, *prefix); err != nil {
		return err
	}
	say("ready")
	for line := range stdinLines() {
		var op string
		var i int
		if _, err := fmt.Sscanf(line, "%s %d", &op, &i); err != nil || (op != "put" && op != "del") {
			return fmt.Errorf("bad line %q", line)
		}
		start := now()
		if op == "put" {
			err = putAddr(cli, *prefix, i)
		} else {
			err = delAddr(cli, *prefix, i)
		}
		done := now()
		if err != nil {
			return err
		}
		say("%s %s %d %d", op, addrOf(i), start, done)
	}
	return nil
}

// cmdBurst deletes [del-from, del-to) and puts [put-from, put-to) interleaved, as fast as conc
// requests in flight allow. Prints "burst T_START T_END COUNT" with etcd's count afterwards.
func cmdBurst(args []string) error {
	fs := flag.NewFlagSet("burst", flag.ExitOnError)
	endpoints := endpointsFlag(fs)
	prefix := fs.String("prefix", "", "key prefix")
	delFrom := fs.Int("del-from", 0, "first index to delete")
	delTo := fs.Int("del-to", 0, "end of the indexes to delete")
	putFrom := fs.Int("put-from", 0, "first index to put")
	putTo := fs.Int("put-to", 0, "end of the indexes to put")
	conc := fs.Int("conc", 32, "requests in flight")
	fs.Parse(args)
	cli, err := newClient(*endpoints)
	if err != nil {
		return err
	}
	defer cli.Close()
	// Warm the connections so the burst does not start with a dial.
	if _, err := countPrefix(cli, *prefix); err != nil {
		return err
	}
	// Deletes and puts alternate while both remain.
	type op struct {
		del bool
		i   int
	}
	var ops []op
	for d, p := *delFrom, *putFrom; d < *delTo || p < *putTo; {
		if d < *delTo {
			ops = append(ops, op{true, d})
			d++
		}
		if p < *putTo {
			ops = append(ops, op{false, p})
			p++
		}
	}
	start := now()
	err = parallel(0, len(ops), *conc, func(j int) error {
		if ops[j].del {
			return delAddr(cli, *prefix, ops[j].i)
		}
		return putAddr(cli, *prefix, ops[j].i)
	})
	end := now()
	if err != nil {
		return err
	}
	n, err := countPrefix(cli, *prefix)
	if err != nil {
		return err
	}
	say("burst %d %d %d", start, end, n)
	return nil
}

// cmdRaw watches prefix with a plain clientv3 watch: the floor every resolver is measured against.
func cmdRaw(args []string) error {
	fs := flag.NewFlagSet("raw", flag.ExitOnError)
	endpoints := endpointsFlag(fs)
	prefix := fs.String("prefix", "", "key prefix")
	fs.Parse(args)
	cli, err := newClient(*endpoints)
	if err != nil {
		return err
	}
	defer cli.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ev := newEvents()
	wch := cli.Watch(ctx, *prefix+"/", clientv3.WithPrefix(), clientv3.WithCreatedNotify())
	created := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		first := true
		for resp := range wch {
			t := now()
			if first && resp.Created {
				first = false
				close(created)
				continue
			}
			ev.mu.Lock()
			for _, e := range resp.Events {
				addr := strings.TrimPrefix(string(e.Kv.Key), *prefix+"/")
				if e.Type == clientv3.EventTypePut {
					ev.add("put", addr, t)
				} else {
					ev.add("del", addr, t)
				}
			}
			ev.mu.Unlock()
		}
	}()
	select {
	case <-created:
	case <-time.After(30 * time.Second):
		return fmt.Errorf("watch not created in 30 s")
	}
	say("ready")
	for range stdinLines() {
	}
	ev.dump()
	return nil
}
