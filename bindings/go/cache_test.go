package gnaming

// The cold-start cache through grpc-go with real RPCs: a client started while every etcd member is
// down calls the servers of the cached list, then follows the live list once etcd is back.

import (
	"fmt"
	"testing"
	"time"
)

func TestAColdStartWithEtcdDownCallsTheCachedServersThenFollowsTheLiveList(t *testing.T) {
	endpoints := etcdEndpoints(t)
	t.Setenv("GNAMING_CACHE_DIR", t.TempDir())
	svc := serviceName(t)
	s1, s2 := startServer(t, 0), startServer(t, 0)
	register(t, svc, s1, nil, 0)
	register(t, svc, s2, nil, 0)

	// A first client sees the list, and so writes it to the cache.
	warm, warmClient := dial(t, fmt.Sprintf("etcd://%s/%s", testCluster, svc))
	warmTraffic := startTraffic(warmClient)
	answeringServers(t, warmTraffic, 10*time.Second, []string{s1.Addr, s2.Addr})
	warmTraffic.halt()
	warm.Close()

	// The same members under another cluster name: its resolvers have no shared watch holding the list,
	// as in a process started now. The cache file is the same, since it is named after the members.
	if err := RegisterCluster("cold", Cluster{Endpoints: endpoints, DialTimeout: time.Second, RequestTimeout: time.Second}); err != nil {
		t.Fatalf("RegisterCluster(cold): %v", err)
	}
	harness(t, "stop-all")
	stopped := true
	t.Cleanup(func() {
		if stopped {
			harness(t, "start-all")
		}
	})
	_, coldClient := dial(t, "etcd://cold/"+svc)
	cold := startTraffic(coldClient)
	defer cold.halt()
	if failed := answeringServers(t, cold, 15*time.Second, []string{s1.Addr, s2.Addr}); len(failed) > 0 {
		t.Fatalf("with every etcd member down, %d RPCs of the cold client failed, first: %v", len(failed), failed[0])
	}

	harness(t, "start-all")
	stopped = false
	s3 := startServer(t, 0)
	register(t, svc, s3, nil, 0)
	if failed := answeringServers(t, cold, 15*time.Second, []string{s1.Addr, s2.Addr, s3.Addr}); len(failed) > 0 {
		t.Fatalf("%d RPCs failed while the cold client moved to the live list, first: %v", len(failed), failed[0])
	}
}
