// Command server serves the gRPC test service on a free loopback port, registers it in etcd as
// "echo" through libgnaming, and on SIGINT/SIGTERM deregisters before stopping, so clients move away
// without a failed RPC.
package main

import (
	"context"
	"flag"
	"log"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	gnaming "github.com/libgnaming/libgnaming/bindings/go"
	"google.golang.org/grpc"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	testpb "google.golang.org/grpc/interop/grpc_testing"
)

type echo struct {
	testgrpc.UnimplementedTestServiceServer
	addr string
}

func (e echo) UnaryCall(context.Context, *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
	return &testpb.SimpleResponse{ServerId: e.addr}, nil
}

func main() {
	etcd := flag.String("etcd", "127.0.0.1:2379", "etcd endpoints, comma-separated")
	weight := flag.Int("weight", 1, "share of traffic, stored in the registration's metadata")
	flag.Parse()
	if err := gnaming.RegisterCluster("", gnaming.Cluster{Endpoints: strings.Split(*etcd, ",")}); err != nil {
		log.Fatal(err)
	}

	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	addr := lis.Addr().String()
	srv := grpc.NewServer()
	testgrpc.RegisterTestServiceServer(srv, echo{addr: addr})
	go srv.Serve(lis)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	reg, err := gnaming.Register(ctx, "", "echo", addr, map[string]any{"weight": *weight}, 5*time.Second)
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("serving on %s, registered as echo", addr)

	stop := make(chan os.Signal, 1)
	signal.Notify(stop, os.Interrupt, syscall.SIGTERM)
	<-stop
	if err := gnaming.GracefulStop(srv, 500*time.Millisecond, reg); err != nil {
		log.Fatal(err)
	}
	log.Printf("deregistered and stopped %s", addr)
}
