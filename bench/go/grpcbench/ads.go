// The ADS observer: a bare state-of-the-world xDS client that subscribes to one name's
// ClusterLoadAssignment and records when each endpoint first arrives, so the bench can split an xDS
// path's latency into the server's push and the gRPC client's own work.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"strconv"
	"sync"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

const claType = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment"

// cmdADS prints "ready" after the first assignment, then "new ADDR T" the first time an endpoint
// is in an assignment (T as the response is received), ACKing every response; "end" when stdin closes.
func cmdADS(args []string) error {
	fs := flag.NewFlagSet("ads", flag.ExitOnError)
	server := fs.String("server", "", "ADS server address, host:port")
	name := fs.String("name", "", "the ClusterLoadAssignment to subscribe to")
	fs.Parse(args)
	conn, err := grpc.NewClient(*server, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stream, err := discoveryv3.NewAggregatedDiscoveryServiceClient(conn).StreamAggregatedResources(ctx)
	if err != nil {
		return err
	}
	req := &discoveryv3.DiscoveryRequest{Node: &corev3.Node{Id: "gnaming-bench-ads-observer"}, TypeUrl: claType,
		ResourceNames: []string{*name}}
	if err := stream.Send(req); err != nil {
		return err
	}
	var once sync.Once
	errs := make(chan error, 1)
	go func() {
		seen := map[string]bool{}
		for {
			resp, err := stream.Recv()
			if err != nil {
				errs <- err
				return
			}
			t := now()
			for _, res := range resp.Resources {
				var cla endpointv3.ClusterLoadAssignment
				if err := res.UnmarshalTo(&cla); err != nil {
					errs <- err
					return
				}
				for _, loc := range cla.Endpoints {
					for _, ep := range loc.LbEndpoints {
						sa := ep.GetEndpoint().GetAddress().GetSocketAddress()
						addr := net.JoinHostPort(sa.GetAddress(), strconv.Itoa(int(sa.GetPortValue())))
						if !seen[addr] {
							seen[addr] = true
							say("new %s %d", addr, t)
						}
					}
				}
			}
			once.Do(func() { say("ready") })
			ack := &discoveryv3.DiscoveryRequest{TypeUrl: claType, ResourceNames: []string{*name},
				VersionInfo: resp.VersionInfo, ResponseNonce: resp.Nonce}
			if err := stream.Send(ack); err != nil {
				errs <- err
				return
			}
		}
	}()
	done := make(chan struct{})
	go func() {
		in := bufio.NewScanner(os.Stdin)
		for in.Scan() {
		}
		close(done)
	}()
	select {
	case err := <-errs:
		return fmt.Errorf("ADS stream: %w", err)
	case <-done:
	}
	say("end")
	return nil
}
