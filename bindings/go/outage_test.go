package gnaming

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/resolver"
)

// tapBuilder is a Builder whose resolvers also report to rec what they hand grpc-go.
type tapBuilder struct {
	*Builder
	rec *recordingConn
}

func (b tapBuilder) Build(t resolver.Target, cc resolver.ClientConn, o resolver.BuildOptions) (resolver.Resolver, error) {
	return b.Builder.Build(t, tapConn{ClientConn: cc, rec: b.rec}, o)
}

type tapConn struct {
	resolver.ClientConn
	rec *recordingConn
}

func (c tapConn) UpdateState(s resolver.State) error {
	c.rec.UpdateState(s)
	return c.ClientConn.UpdateState(s)
}

func (c tapConn) ReportError(err error) {
	c.rec.ReportError(err)
	c.ClientConn.ReportError(err)
}

func TestEtcdOutageKeepsRPCsFlowingToTheLastKnownServers(t *testing.T) {
	etcdEndpoints(t)
	svc := serviceName(t)
	s1, s2 := startServer(t, 0), startServer(t, 0)
	register(t, svc, s1, nil, 0)
	register(t, svc, s2, nil, 0)

	tap := tapBuilder{Builder: NewBuilder("etcd"), rec: newRecordingConn()}
	_, client := dial(t, fmt.Sprintf("etcd://%s/%s", testCluster, svc), grpc.WithResolvers(tap))
	tr := startTraffic(client)
	defer tr.halt()
	answeringServers(t, tr, 10*time.Second, []string{s1.Addr, s2.Addr})

	harness(t, "stop-all")
	stopped := true
	t.Cleanup(func() {
		if stopped {
			harness(t, "start-all")
		}
	})
	tr.reset()
	const outage = 4 * time.Second
	time.Sleep(outage)
	answered, failures := tr.reset()
	harness(t, "start-all")
	stopped = false

	if len(failures) > 0 {
		t.Fatalf("%d RPCs failed during the etcd outage, first: %v", len(failures), failures[0])
	}
	if got, want := keys(answered), sortedAddrs(s1, s2); !slices.Equal(got, want) {
		t.Fatalf("servers answering during the outage:\n got  %v\n want %v", answered, want)
	}
	states, errs := tap.rec.snapshot()
	for i, s := range states {
		if len(s.Addresses) == 0 {
			t.Fatalf("update %d handed grpc-go an empty list; all updates: %v; errors: %v", i, describeStates(states), errs)
		}
	}
	if len(errs) == 0 {
		t.Fatalf("no error reported to grpc-go during a %v etcd outage; updates: %v", outage, describeStates(states))
	}
	t.Logf("during the outage: %d RPCs answered, grpc-go was told: %v", answered[s1.Addr]+answered[s2.Addr], errs[0])

	// Back from the outage, changes flow again.
	s3 := startServer(t, 0)
	register(t, svc, s3, nil, 0)
	answeringServers(t, tr, 15*time.Second, []string{s1.Addr, s2.Addr, s3.Addr})
}
