// Registrations in the Kratos and go-micro layouts sit under prefixes at etcd's root
// ("/microservices/NAME", "/micro/registry/NAME"): grpc-go's xDS client reaches them through the
// agent on the listener name of their etcd:/// target, and follows a deregistration.
package xdsgo

import (
	"context"
	"testing"

	gnaming "github.com/libgnaming/libgnaming/bindings/go"
)

func TestFrameworkRegistrationsUnderRootPrefixesAreReachedThroughXds(t *testing.T) {
	useHarnessEtcd(t)
	name := serviceName(t)
	for _, c := range []struct{ format, prefix string }{{"kratos", "/microservices/"}, {"go-micro", "/micro/registry/"}} {
		a, b := startGreeter(t), startGreeter(t)
		ctx, cancel := context.WithTimeout(context.Background(), registerTimeout)
		regA, err := gnaming.Register(ctx, "", name, a.Addr, map[string]any{"version": "v1"}, 0, gnaming.WithFormat(c.format))
		if err != nil {
			cancel()
			t.Fatalf("Register(%s, %s): %v", c.format, a.Addr, err)
		}
		regB, err := gnaming.Register(ctx, "", name, b.Addr, nil, 0, gnaming.WithFormat(c.format))
		cancel()
		if err != nil {
			t.Fatalf("Register(%s, %s): %v", c.format, b.Addr, err)
		}
		t.Cleanup(func() { regA.Close(); regB.Close() })
		client := dialXDS(t, "etcd:///"+c.prefix+name)
		took := waitAnswering(t, client, followTimeout, a.Addr, b.Addr)
		t.Logf("%s: both registrations answer through xds:///etcd:///%s%s after %v", c.format, c.prefix, name, took)
		if err := regA.Close(); err != nil {
			t.Fatalf("deregistering %s: %v", a.Addr, err)
		}
		waitAnswering(t, client, followTimeout, b.Addr)
	}
}
