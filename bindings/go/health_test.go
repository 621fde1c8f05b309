package gnaming

// The target's health key through grpc-go: the service config libgnaming hands over asks for
// client-side health checking, so RPCs go only to servers whose gRPC health service says SERVING.

import (
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
	// Also what enables client-side health checking in grpc-go: the package registers the checker.
	"google.golang.org/grpc/health"
	healthgrpc "google.golang.org/grpc/health/grpc_health_v1"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
)

// startHealthServer is startServer with grpc-go's standard health service beside the TestService.
func startHealthServer(t *testing.T) (*testServer, *health.Server) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	s := &testServer{Addr: lis.Addr().String(), srv: grpc.NewServer()}
	testgrpc.RegisterTestServiceServer(s.srv, s)
	h := health.NewServer()
	healthgrpc.RegisterHealthServer(s.srv, h)
	go s.srv.Serve(lis)
	t.Cleanup(s.srv.Stop)
	return s, h
}

func TestWithTheHealthKeyRPCsGoOnlyToServingServersAndMoveWhenTheyFlip(t *testing.T) {
	etcdEndpoints(t)
	svc := serviceName(t)
	const checked = "grpc.testing.TestService"
	a, aHealth := startHealthServer(t)
	b, bHealth := startHealthServer(t)
	aHealth.SetServingStatus(checked, healthgrpc.HealthCheckResponse_SERVING)
	bHealth.SetServingStatus(checked, healthgrpc.HealthCheckResponse_NOT_SERVING)
	register(t, svc, a, nil, 0)
	register(t, svc, b, nil, 0)

	_, checking := dial(t, "etcd:///"+svc+"?health="+checked)
	_, unchecked := dial(t, "etcd:///"+svc)
	tr, control := startTraffic(checking), startTraffic(unchecked)
	defer tr.halt()
	defer control.halt()
	// Without the key the NOT_SERVING server gets RPCs too: the health key is what keeps them away.
	answeringServers(t, control, 10*time.Second, []string{a.Addr, b.Addr})
	if failed := answeringServers(t, tr, 10*time.Second, []string{a.Addr}); len(failed) > 0 {
		t.Fatalf("%d RPCs failed while only %s was serving, first: %v", len(failed), a.Addr, failed[0])
	}

	// b comes in before a goes out. Each server's health stream reaches the client on its own, so
	// flipping both at once can leave a moment with no serving server, in which an RPC fails.
	bHealth.SetServingStatus(checked, healthgrpc.HealthCheckResponse_SERVING)
	if failed := answeringServers(t, tr, 10*time.Second, []string{a.Addr, b.Addr}); len(failed) > 0 {
		t.Fatalf("%d RPCs failed while %s became serving, first: %v", len(failed), b.Addr, failed[0])
	}
	aHealth.SetServingStatus(checked, healthgrpc.HealthCheckResponse_NOT_SERVING)
	if failed := answeringServers(t, tr, 10*time.Second, []string{b.Addr}); len(failed) > 0 {
		t.Fatalf("%d RPCs failed while %s stopped serving, first: %v", len(failed), a.Addr, failed[0])
	}
}
