// Package kratosinterop checks that libgnaming and go-kratos (v2) find each other's servers in etcd:
// a Kratos gRPC server's instance is discovered by a libgnaming client (the Go binding), and a
// libgnaming registration in the Kratos format is discovered by Kratos's own gRPC discovery resolver,
// each with real RPCs, against the real etcd cluster that tests/harness/etcd_cluster.py starts around
// `go test` (GNAMING_TEST_ETCD_ENDPOINTS).
//
// Kratos's etcd registry lives in the module github.com/go-kratos/kratos/contrib/registry/etcd/v2,
// which the Go module proxy does not serve. Its registrar and discovery are a lease, a put of
// encoding/json's ServiceInstance under "<namespace>/<name>/<id>", and a prefix get and watch; the
// small glue below does the same with kratos's own registry types, so that what is tested is
// Kratos's document, key layout and resolver, not a copy of them.
package kratosinterop

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/go-kratos/kratos/v2/registry"
	kgrpc "github.com/go-kratos/kratos/v2/transport/grpc"
	gnaming "github.com/libgnaming/libgnaming/bindings/go"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
)

// kratosNamespace is the default namespace of Kratos's etcd registry.
const kratosNamespace = "/microservices"

// patience bounds every wait for a registration or an RPC to get through.
const patience = 15 * time.Second

const cluster = "harness"

func TestMain(m *testing.M) {
	gnaming.RegisterResolvers()
	os.Exit(m.Run())
}

// etcdClient registers the harness cluster with libgnaming and returns a plain etcd client of it.
func etcdClient(t *testing.T) *clientv3.Client {
	t.Helper()
	eps := os.Getenv("GNAMING_TEST_ETCD_ENDPOINTS")
	if eps == "" {
		t.Skip("no etcd: run under `python3 tests/harness/etcd_cluster.py run -- go test ...` (make test-kratos does)")
	}
	list := strings.Split(eps, ",")
	if err := gnaming.RegisterCluster(cluster, gnaming.Cluster{Endpoints: list, DialTimeout: 2 * time.Second, RequestTimeout: 2 * time.Second}); err != nil {
		t.Fatalf("RegisterCluster: %v", err)
	}
	c, err := clientv3.New(clientv3.Config{Endpoints: list, DialTimeout: 2 * time.Second})
	if err != nil {
		t.Fatalf("etcd client: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// echo answers UnaryCall with its own name, so a test knows which server it reached.
type echo struct {
	testgrpc.UnimplementedTestServiceServer
	id string
}

func (e *echo) UnaryCall(context.Context, *testgrpc.SimpleRequest) (*testgrpc.SimpleResponse, error) {
	return &testgrpc.SimpleResponse{ServerId: e.id}, nil
}

// callUntil makes UnaryCall on conn until one is answered by want, for at most patience.
func callUntil(t *testing.T, conn grpc.ClientConnInterface, want string) {
	t.Helper()
	client := testgrpc.NewTestServiceClient(conn)
	deadline := time.Now().Add(patience)
	var last string
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		resp, err := client.UnaryCall(ctx, &testgrpc.SimpleRequest{})
		cancel()
		if err == nil && resp.GetServerId() == want {
			return
		}
		last = fmt.Sprintf("%v %v", resp.GetServerId(), err)
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("no RPC answered by %q within %v; last: %s", want, patience, last)
}

func TestAKratosServerIsReachedThroughLibgnaming(t *testing.T) {
	etcd := etcdClient(t)
	name := fmt.Sprintf("kratos-echo-%d", time.Now().UnixNano())
	srv := kgrpc.NewServer(kgrpc.Address("127.0.0.1:0"))
	testgrpc.RegisterTestServiceServer(srv, &echo{id: "kratos"})
	endpoint, err := srv.Endpoint()
	if err != nil {
		t.Fatalf("kratos endpoint: %v", err)
	}
	go srv.Start(context.Background())
	t.Cleanup(func() { srv.Stop(context.Background()) })

	// Kratos's registrar: its ServiceInstance as encoding/json writes it, under a lease.
	instance := &registry.ServiceInstance{
		ID: "kratos-1", Name: name, Version: "v1",
		Metadata:  map[string]string{"zone": "a"},
		Endpoints: []string{"http://127.0.0.1:1", endpoint.String()},
	}
	value, err := json.Marshal(instance)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	lease, err := etcd.Grant(ctx, 10)
	if err != nil {
		t.Fatalf("grant: %v", err)
	}
	t.Cleanup(func() { etcd.Revoke(context.Background(), lease.ID) })
	key := fmt.Sprintf("%s/%s/%s", kratosNamespace, name, instance.ID)
	if _, err := etcd.Put(ctx, key, string(value), clientv3.WithLease(lease.ID)); err != nil {
		t.Fatalf("put: %v", err)
	}

	conn, err := grpc.NewClient("etcd://"+cluster+"/"+kratosNamespace+"/"+name, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	defer conn.Close()
	callUntil(t, conn, "kratos")
}

func TestALibgnamingRegistrationIsReachedThroughKratosDiscovery(t *testing.T) {
	etcd := etcdClient(t)
	name := fmt.Sprintf("gnaming-echo-%d", time.Now().UnixNano())
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	server := grpc.NewServer()
	testgrpc.RegisterTestServiceServer(server, &echo{id: "libgnaming"})
	go server.Serve(lis)
	defer server.Stop()

	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	reg, err := gnaming.Register(ctx, cluster, name, lis.Addr().String(), map[string]any{"version": "v3", "weight": 2}, 0, gnaming.WithFormat("kratos"))
	if err != nil {
		t.Fatalf("Register: %v", err)
	}
	defer reg.Close()

	// What libgnaming wrote is Kratos's own ServiceInstance.
	got, err := etcd.Get(ctx, kratosNamespace+"/"+name+"/", clientv3.WithPrefix())
	if err != nil || len(got.Kvs) != 1 {
		t.Fatalf("get: %v, %d keys", err, len(got.Kvs))
	}
	var instance registry.ServiceInstance
	if err := json.Unmarshal(got.Kvs[0].Value, &instance); err != nil {
		t.Fatalf("not a Kratos instance: %v: %s", err, got.Kvs[0].Value)
	}
	wantEndpoint := "grpc://" + lis.Addr().String() + "?isSecure=false"
	if key := string(got.Kvs[0].Key); instance.Name != name || instance.Version != "v3" || key != kratosNamespace+"/"+name+"/"+instance.ID ||
		len(instance.Endpoints) != 1 || instance.Endpoints[0] != wantEndpoint || instance.Metadata["weight"] != "2" {
		t.Fatalf("instance at %s: %+v; want name %s, version v3, endpoint %s, weight \"2\"", key, instance, name, wantEndpoint)
	}

	conn, err := kgrpc.DialInsecure(ctx, kgrpc.WithEndpoint("discovery:///"+name), kgrpc.WithDiscovery(&etcdDiscovery{client: etcd}))
	if err != nil {
		t.Fatalf("kratos dial: %v", err)
	}
	defer conn.Close()
	callUntil(t, conn, "libgnaming")
}

// etcdDiscovery is Kratos's etcd discovery (see the package comment): a prefix get for the list,
// a prefix watch for changes.
type etcdDiscovery struct{ client *clientv3.Client }

func (d *etcdDiscovery) GetService(ctx context.Context, name string) ([]*registry.ServiceInstance, error) {
	resp, err := d.client.Get(ctx, kratosNamespace+"/"+name+"/", clientv3.WithPrefix())
	if err != nil {
		return nil, err
	}
	instances := make([]*registry.ServiceInstance, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		var si registry.ServiceInstance
		if err := json.Unmarshal(kv.Value, &si); err != nil {
			return nil, fmt.Errorf("%s: %w", kv.Key, err)
		}
		instances = append(instances, &si)
	}
	return instances, nil
}

func (d *etcdDiscovery) Watch(ctx context.Context, name string) (registry.Watcher, error) {
	ctx, cancel := context.WithCancel(ctx)
	return &etcdWatcher{
		discovery: d, name: name, ctx: ctx, cancel: cancel, first: true,
		changes: d.client.Watch(ctx, kratosNamespace+"/"+name+"/", clientv3.WithPrefix()),
	}, nil
}

type etcdWatcher struct {
	discovery *etcdDiscovery
	name      string
	ctx       context.Context
	cancel    context.CancelFunc
	first     bool
	changes   clientv3.WatchChan
}

// Next returns the list at once the first time, then after each change.
func (w *etcdWatcher) Next() ([]*registry.ServiceInstance, error) {
	if !w.first {
		select {
		case <-w.ctx.Done():
			return nil, w.ctx.Err()
		case resp, ok := <-w.changes:
			if !ok {
				return nil, context.Canceled
			}
			if err := resp.Err(); err != nil {
				return nil, err
			}
		}
	}
	w.first = false
	return w.discovery.GetService(w.ctx, w.name)
}

func (w *etcdWatcher) Stop() error {
	w.cancel()
	return nil
}
