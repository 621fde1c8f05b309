// Command client resolves etcd:///echo through libgnaming, spreads RPCs over every registered server
// by weight, and prints how many each one answered.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"sort"
	"strings"
	"time"

	gnaming "github.com/libgnaming/libgnaming/bindings/go"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	testpb "google.golang.org/grpc/interop/grpc_testing"
)

func main() {
	etcd := flag.String("etcd", "127.0.0.1:2379", "etcd endpoints, comma-separated")
	target := flag.String("target", "etcd:///echo", "where to send the RPCs")
	n := flag.Int("n", 30, "how many RPCs to make")
	flag.Parse()
	if err := gnaming.RegisterCluster("", gnaming.Cluster{Endpoints: strings.Split(*etcd, ",")}); err != nil {
		log.Fatal(err)
	}
	gnaming.RegisterResolvers()
	gnaming.RegisterBalancer()

	conn, err := grpc.NewClient(*target,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultServiceConfig(gnaming.WeightedServiceConfig))
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	client := testgrpc.NewTestServiceClient(conn)

	answered := map[string]int{}
	for range *n {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		resp, err := client.UnaryCall(ctx, &testpb.SimpleRequest{FillServerId: true}, grpc.WaitForReady(true))
		cancel()
		if err != nil {
			log.Fatal(err)
		}
		answered[resp.ServerId]++
	}
	servers := make([]string, 0, len(answered))
	for s := range answered {
		servers = append(servers, s)
	}
	sort.Strings(servers)
	for _, s := range servers {
		fmt.Printf("%s answered %d of %d RPCs\n", s, answered[s], *n)
	}
}
