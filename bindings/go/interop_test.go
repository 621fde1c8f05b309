package gnaming

// Interoperability with etcd's own Go naming packages, both ways: the key layout and JSON value
// libgnaming reads and writes are those of go.etcd.io/etcd/client/v3/naming.

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/naming/endpoints"
	etcdresolver "go.etcd.io/etcd/client/v3/naming/resolver"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/resolver"
)

func etcdClient(t *testing.T, eps []string) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: eps, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatalf("clientv3.New: %v", err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// listUntil lists the manager's endpoints until ok holds (at most 5 s) and returns the last list.
// Polling because etcd 3.4 was seen to answer a Get made right after the registration's put
// returned without the key for about 10 ms, although the Get's header revision included the put.
func listUntil(t *testing.T, em endpoints.Manager, ok func(endpoints.Key2EndpointMap) bool) endpoints.Key2EndpointMap {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for {
		list, err := em.List(ctx)
		if err != nil {
			t.Fatalf("List: %v", err)
		}
		if ok(list) || ctx.Err() != nil {
			return list
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestEndpointsAddedWithEtcdsGoPackageAreResolvedByLibgnaming(t *testing.T) {
	cli := etcdClient(t, etcdEndpoints(t))
	svc := serviceName(t)
	em, err := endpoints.NewManager(cli, svc)
	if err != nil {
		t.Fatal(err)
	}
	s := startServer(t, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	key := svc + "/" + s.Addr
	if err := em.AddEndpoint(ctx, key, endpoints.Endpoint{Addr: s.Addr, Metadata: map[string]any{"weight": 2, "zone": "b"}}); err != nil {
		t.Fatalf("AddEndpoint: %v", err)
	}

	target := fmt.Sprintf("etcd://%s/%s", testCluster, svc)
	watch := observe(t, target)
	st := watch.waitState(t, 10*time.Second, func(s resolver.State) bool { return len(s.Addresses) == 1 })
	info, _ := GetAddressInfo(st.Addresses[0])
	if st.Addresses[0].Addr != s.Addr || info.Weight != 2 || !strings.Contains(info.Metadata, `"zone":"b"`) {
		t.Fatalf("resolved %v with %+v, want %s with weight 2 and the metadata", addrList(st), info, s.Addr)
	}
	_, client := dial(t, target)
	if id, err := call(ctx, client); err != nil || id != s.Addr {
		t.Fatalf("RPC through libgnaming answered by %q (%v), want %s", id, err, s.Addr)
	}

	if err := em.DeleteEndpoint(ctx, key); err != nil {
		t.Fatalf("DeleteEndpoint: %v", err)
	}
	watch.waitState(t, 10*time.Second, func(s resolver.State) bool { return len(s.Addresses) == 0 })
}

func TestLibgnamingRegistrationsAreResolvedByEtcdsGoResolver(t *testing.T) {
	cli := etcdClient(t, etcdEndpoints(t))
	svc := serviceName(t)
	s := startServer(t, 0)
	reg := register(t, svc, s, map[string]any{"zone": "a"}, 0)

	em, err := endpoints.NewManager(cli, svc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	key := svc + "/" + s.Addr
	list := listUntil(t, em, func(l endpoints.Key2EndpointMap) bool { return len(l) > 0 })
	ep, ok := list[key]
	if meta, _ := ep.Metadata.(map[string]any); !ok || len(list) != 1 || ep.Addr != s.Addr || meta["zone"] != "a" {
		t.Fatalf("etcd's endpoints.Manager lists %v, want only key %s with Addr %s and metadata zone=a", list, key, s.Addr)
	}

	b, err := etcdresolver.NewBuilder(cli)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient("etcd:///"+svc, grpc.WithResolvers(b), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if id, err := call(ctx, testgrpc.NewTestServiceClient(conn)); err != nil || id != s.Addr {
		t.Fatalf("RPC through etcd's resolver answered by %q (%v), want %s", id, err, s.Addr)
	}

	if err := reg.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if list := listUntil(t, em, func(l endpoints.Key2EndpointMap) bool { return len(l) == 0 }); len(list) != 0 {
		t.Fatalf("after Close etcd's endpoints.Manager still lists %v, want nothing", list)
	}
}
