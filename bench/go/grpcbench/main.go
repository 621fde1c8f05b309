// grpcbench: the Go side of the "xDS vs native" bench section (bench/bench.py drives it). Three roles:
//
//	grpcbench backends -n N -endpoints E -prefix P
//	grpcbench client -target T -name PATH [-workers 3] [-pace 2ms]
//	grpcbench ads -server ADDR -name NAME (ads.go)
//
// backends serves N gRPC servers on 127.0.0.1 (any method; the reply is the server's own address;
// the demo's Greeter clients get it as a HelloReply),
// puts and deletes their etcd entries on command, and counts the distinct client connections (peer
// addresses) each server saw from each path, a path being named by its clients in every request.
// client calls T (xds:///NAME through grpc-go's xDS client, or etcd:///NAME through libgnaming's Go
// resolver.Builder) from a few workers and prints the first time each backend answered.
// Times are CLOCK_MONOTONIC nanoseconds, comparable across processes.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	gnaming "github.com/libgnaming/libgnaming/bindings/go"
	clientv3 "go.etcd.io/etcd/client/v3"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/peer"
	"google.golang.org/protobuf/encoding/protowire"
	_ "google.golang.org/grpc/xds" // the xds:/// resolver and its balancers
)

// method is the one RPC every client calls; the servers answer any method.
const method = "/bench.Who/Who"

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "backends":
		err = cmdBackends(os.Args[2:])
	case "client":
		err = cmdClient(os.Args[2:])
	case "ads":
		err = cmdADS(os.Args[2:])
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "grpcbench %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: grpcbench backends|client|ads [flags]")
	os.Exit(2)
}

func now() int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		panic(err)
	}
	return ts.Nano()
}

var outMu sync.Mutex

func say(format string, args ...any) {
	outMu.Lock()
	defer outMu.Unlock()
	fmt.Printf(format+"\n", args...)
}

// rawCodec passes request and reply bytes through, so no stack needs generated code.
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error) { return *v.(*[]byte), nil }
func (rawCodec) Unmarshal(data []byte, v any) error {
	*v.(*[]byte) = append([]byte(nil), data...)
	return nil
}
func (rawCodec) Name() string { return "proto" }

// backend is one server: its address, the peers each path connected from, and its last RPC.
type backend struct {
	addr    string
	mu      sync.Mutex
	peers   map[string]map[string]bool // path → peer address → seen
	lastRPC map[string]int64           // path → time of its last RPC here
}

// greeterMethod is the demo's Java and Node clients' RPC: request and reply are one-string protobuf
// messages (helloworld.HelloRequest.name, HelloReply.message), so the path name and the address travel
// in field 1 there, and raw everywhere else.
const greeterMethod = "/helloworld.Greeter/SayHello"

func (b *backend) handle(_ any, stream grpc.ServerStream) error {
	var req []byte
	if err := stream.RecvMsg(&req); err != nil {
		return err
	}
	method, _ := grpc.MethodFromServerStream(stream)
	greeter := method == greeterMethod
	if greeter {
		req = stringField1(req)
	}
	path := string(req)
	b.mu.Lock()
	b.lastRPC[path] = now()
	if p, ok := peer.FromContext(stream.Context()); ok {
		if b.peers[path] == nil {
			b.peers[path] = map[string]bool{}
		}
		b.peers[path][p.Addr.String()] = true
	}
	b.mu.Unlock()
	reply := []byte(b.addr)
	if greeter {
		reply = append(protowire.AppendTag(nil, 1, protowire.BytesType), protowire.AppendString(nil, b.addr)...)
	}
	return stream.SendMsg(&reply)
}

// stringField1 is field 1 of a protobuf message when it is a string, else empty.
func stringField1(msg []byte) []byte {
	for len(msg) > 0 {
		num, typ, n := protowire.ConsumeTag(msg)
		if n < 0 {
			return nil
		}
		msg = msg[n:]
		if num == 1 && typ == protowire.BytesType {
			v, _ := protowire.ConsumeBytes(msg)
			return v
		}
		n = protowire.ConsumeFieldValue(num, typ, msg)
		if n < 0 {
			return nil
		}
		msg = msg[n:]
	}
	return nil
}

// busyPaths names the paths that called the server within the last `within`.
func (b *backend) busyPaths(within time.Duration) []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var busy []string
	for path, t := range b.lastRPC {
		if time.Duration(now()-t) < within {
			busy = append(busy, path)
		}
	}
	sort.Strings(busy)
	return busy
}

func cmdBackends(args []string) error {
	fs := flag.NewFlagSet("backends", flag.ExitOnError)
	n := fs.Int("n", 3, "number of servers")
	endpoints := fs.String("endpoints", "", "etcd endpoints, host:port,host:port")
	prefix := fs.String("prefix", "", "service key prefix, without the trailing /")
	fs.Parse(args)
	cli, err := clientv3.New(clientv3.Config{Endpoints: strings.Split(*endpoints, ","), DialTimeout: 10 * time.Second})
	if err != nil {
		return err
	}
	defer cli.Close()
	backends := make([]*backend, *n)
	addrs := make([]string, *n)
	for i := range backends {
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		b := &backend{addr: lis.Addr().String(), peers: map[string]map[string]bool{}, lastRPC: map[string]int64{}}
		srv := grpc.NewServer(grpc.ForceServerCodec(rawCodec{}), grpc.UnknownServiceHandler(b.handle))
		go srv.Serve(lis)
		defer srv.Stop()
		backends[i], addrs[i] = b, b.addr
	}
	say("backends %s", strings.Join(addrs, " "))
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		f := strings.Fields(in.Text())
		if len(f) == 0 {
			continue
		}
		if f[0] == "conns" {
			out := map[string]map[string]int{} // path → backend → distinct peers
			for _, b := range backends {
				b.mu.Lock()
				for path, ps := range b.peers {
					if out[path] == nil {
						out[path] = map[string]int{}
					}
					out[path][b.addr] = len(ps)
				}
				b.mu.Unlock()
			}
			j, _ := json.Marshal(out)
			say("conns %s", j)
			continue
		}
		if len(f) < 2 {
			return fmt.Errorf("bad command %q", in.Text())
		}
		i, err := strconv.Atoi(f[1])
		if err != nil || i < 0 || i >= len(backends) {
			return fmt.Errorf("bad backend in %q", in.Text())
		}
		b := backends[i]
		key := *prefix + "/" + b.addr
		switch f[0] {
		case "put", "del":
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			start := now()
			if f[0] == "put" {
				_, err = cli.Put(ctx, key, `{"Op":0,"Addr":"`+b.addr+`"}`)
			} else {
				_, err = cli.Delete(ctx, key)
			}
			done := now()
			cancel()
			if err != nil {
				return err
			}
			say("%s %d %s %d %d", f[0], i, b.addr, start, done)
		case "quiet":
			// Waits (at most 10 s) until no path has called the server for the given time, i.e. every
			// client has moved off it; names the paths that still call it.
			quietFor, err := time.ParseDuration(f[len(f)-1])
			if err != nil {
				return err
			}
			deadline := time.Now().Add(10 * time.Second)
			for {
				busy := b.busyPaths(quietFor)
				if len(busy) == 0 {
					say("quiet %d ok", i)
					break
				}
				if time.Now().After(deadline) {
					say("quiet %d busy %s", i, strings.Join(busy, ","))
					break
				}
				time.Sleep(5 * time.Millisecond)
			}
		default:
			return fmt.Errorf("bad command %q", in.Text())
		}
	}
	return in.Err()
}

func cmdClient(args []string) error {
	fs := flag.NewFlagSet("client", flag.ExitOnError)
	target := fs.String("target", "", "gRPC target (xds:///NAME or etcd:///NAME)")
	name := fs.String("name", "", "the path's name, sent in every request")
	workers := fs.Int("workers", 3, "concurrent callers")
	pace := fs.Duration("pace", 2*time.Millisecond, "pause after each RPC, per worker")
	fs.Parse(args)
	gnaming.RegisterResolvers()
	conn, err := grpc.NewClient(*target, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultServiceConfig(`{"loadBalancingConfig":[{"round_robin":{}}]}`),
		grpc.WithDefaultCallOptions(grpc.ForceCodec(rawCodec{})))
	if err != nil {
		return err
	}
	defer conn.Close()
	var mu sync.Mutex
	seen := map[string]bool{}
	var ok, failed atomic.Int64
	var lastErr atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < *workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req := []byte(*name)
			for {
				select {
				case <-stop:
					return
				default:
				}
				var reply []byte
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				err := conn.Invoke(ctx, method, &req, &reply, grpc.WaitForReady(true))
				cancel()
				t := now()
				if err != nil {
					failed.Add(1)
					lastErr.Store(err.Error())
				} else {
					ok.Add(1)
					addr := string(reply)
					mu.Lock()
					first := !seen[addr]
					seen[addr] = true
					mu.Unlock()
					if first {
						say("new %s %d", addr, t)
					}
				}
				time.Sleep(*pace)
			}
		}()
	}
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
	}
	close(stop)
	wg.Wait()
	e, _ := lastErr.Load().(string)
	j, _ := json.Marshal(map[string]any{"ok": ok.Load(), "failed": failed.Load(), "last_error": e})
	say("rpcs %s", j)
	say("end")
	return errors.Join(in.Err())
}
