// Command server is the demo's greeter in Go: it answers SayHello with its name, registers in etcd
// as "echo" through libgnaming, and on SIGTERM deregisters before stopping gracefully. It prints
// JSON lines for the demo driver.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"log"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	gnaming "github.com/libgnaming/libgnaming/bindings/go"
	pb "github.com/libgnaming/libgnaming/demo/go/helloworld"
	"google.golang.org/grpc"
)

type greeter struct {
	pb.UnimplementedGreeterServer
	name string
}

func (g greeter) SayHello(context.Context, *pb.HelloRequest) (*pb.HelloReply, error) {
	return &pb.HelloReply{Message: g.name}, nil
}

func say(fields map[string]any) {
	line, _ := json.Marshal(fields)
	os.Stdout.Write(append(line, '\n'))
}

func main() {
	ttl := flag.Duration("ttl", 2*time.Second, "lease TTL of the registration")
	flag.Parse()
	if flag.NArg() != 1 {
		log.Fatal("usage: server [--ttl 2s] NAME")
	}
	name := flag.Arg(0)
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, os.Interrupt, syscall.SIGTERM)

	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	srv := grpc.NewServer()
	pb.RegisterGreeterServer(srv, greeter{name: name})
	go srv.Serve(lis)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	reg, err := gnaming.Register(ctx, "", "echo", lis.Addr().String(), nil, *ttl)
	cancel()
	if err != nil {
		log.Fatalf("register: %v", err)
	}
	say(map[string]any{"event": "ready", "name": name, "addr": lis.Addr().String(), "lang": "go"})
	<-stop
	if err := gnaming.GracefulStop(srv, 500*time.Millisecond, reg); err != nil {
		log.Printf("deregister: %v", err)
	}
	say(map[string]any{"event": "stopped", "name": name})
}
