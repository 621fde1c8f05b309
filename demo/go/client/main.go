// Command client is the demo's greeter client in Go: it calls SayHello on etcd:///echo with
// round_robin through libgnaming's resolver, counts answers by server, and prints a JSON status
// line every quarter second (with the address list its resolver last gave grpc).
package main

import (
	"context"
	"encoding/json"
	"flag"
	"log"
	"os"
	"os/signal"
	"sort"
	"sync"
	"syscall"
	"time"

	gnaming "github.com/libgnaming/libgnaming/bindings/go"
	pb "github.com/libgnaming/libgnaming/demo/go/helloworld"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/status"
)

// watching wraps libgnaming's builder to note each address list it hands to grpc.
type watching struct {
	resolver.Builder
	mu    sync.Mutex
	addrs []string
}

type watchingConn struct {
	resolver.ClientConn
	w *watching
}

func (w *watching) Build(t resolver.Target, cc resolver.ClientConn, o resolver.BuildOptions) (resolver.Resolver, error) {
	return w.Builder.Build(t, watchingConn{cc, w}, o)
}

func (c watchingConn) UpdateState(s resolver.State) error {
	var addrs []string
	for _, e := range s.Endpoints {
		for _, a := range e.Addresses {
			addrs = append(addrs, a.Addr)
		}
	}
	if len(s.Endpoints) == 0 {
		for _, a := range s.Addresses {
			addrs = append(addrs, a.Addr)
		}
	}
	sort.Strings(addrs)
	c.w.mu.Lock()
	c.w.addrs = addrs
	c.w.mu.Unlock()
	return c.ClientConn.UpdateState(s)
}

func (w *watching) current() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string{}, w.addrs...)
}

func main() {
	target := flag.String("target", "etcd:///echo", "libgnaming target")
	interval := flag.Duration("interval", 10*time.Millisecond, "pause between RPCs")
	flag.Parse()
	if flag.NArg() != 1 {
		log.Fatal("usage: client [--target etcd:///echo] NAME")
	}
	name := flag.Arg(0)
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, os.Interrupt, syscall.SIGTERM)

	w := &watching{Builder: gnaming.NewBuilder("etcd")}
	conn, err := grpc.NewClient(*target,
		grpc.WithResolvers(w),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultServiceConfig(`{"loadBalancingConfig":[{"round_robin":{}}]}`))
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	client := pb.NewGreeterClient(conn)

	counts := map[string]int{}
	ok, failed := 0, 0
	var failures []int64
	lastError := ""
	report := func() {
		line, _ := json.Marshal(map[string]any{
			"event": "status", "client": name, "lang": "go", "addresses": w.current(),
			"counts": counts, "ok": ok, "failed": failed, "failures": failures, "last_error": lastError,
		})
		os.Stdout.Write(append(line, '\n'))
		failures = nil
	}
	ticker := time.NewTicker(250 * time.Millisecond)
	defer ticker.Stop()
	// The first call waits for addresses; later ones fail fast like any round_robin call.
	first := true
	for {
		select {
		case <-stop:
			report()
			return
		case <-ticker.C:
			report()
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		reply, err := client.SayHello(ctx, &pb.HelloRequest{Name: name}, grpc.WaitForReady(first))
		cancel()
		if err != nil {
			failed++
			failures = append(failures, time.Now().UnixMilli())
			lastError = status.Code(err).String() + ": " + status.Convert(err).Message()
		} else {
			counts[reply.Message]++
			ok++
			first = false
		}
		time.Sleep(*interval)
	}
}
