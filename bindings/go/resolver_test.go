package gnaming

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"testing"
	"time"

	"google.golang.org/grpc/resolver"
)

func buildResolver(t *testing.T, b *Builder, target string) (resolver.Resolver, *recordingConn) {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatalf("url.Parse(%q): %v", target, err)
	}
	cc := newRecordingConn()
	r, err := b.Build(resolver.Target{URL: *u}, cc, resolver.BuildOptions{})
	if err != nil {
		t.Fatalf("Build(%q): %v", target, err)
	}
	t.Cleanup(r.Close)
	return r, cc
}

func TestLibraryABIMatchesTheHeader(t *testing.T) {
	if err := checkABI(); err != nil {
		t.Fatal(err)
	}
	if Version() == "" {
		t.Fatal("gn_version() is empty")
	}
}

func TestPassTargetBecomesOneAddressPerCopyWithCopyIndexes(t *testing.T) {
	_, cc := buildResolver(t, NewBuilder("pass"), "pass:///127.0.0.1:7001#2,[::1]:7002,name.test:7003#3")
	s := cc.waitState(t, 5*time.Second, func(resolver.State) bool { return true })
	want := []string{
		"127.0.0.1:7001#0(w=1)", "127.0.0.1:7001#1(w=1)", "[::1]:7002#0(w=1)",
		"name.test:7003#0(w=1)", "name.test:7003#1(w=1)", "name.test:7003#2(w=1)",
	}
	if got := addrList(s); !slices.Equal(got, want) {
		t.Fatalf("addresses:\n got  %v\n want %v", got, want)
	}
	if len(s.Endpoints) != len(s.Addresses) {
		t.Fatalf("%d endpoints for %d addresses", len(s.Endpoints), len(s.Addresses))
	}
	for i, ep := range s.Endpoints {
		info, ok := GetEndpointInfo(ep)
		if !ok || len(ep.Addresses) != 1 || !ep.Addresses[0].Equal(s.Addresses[i]) {
			t.Fatalf("endpoint %d = %v (info %v, %v), want the one address %v", i, ep, info, ok, s.Addresses[i])
		}
	}
	// Copies must stay distinct for grpc-go, or it opens one connection where the target asked for two.
	if s.Addresses[0].Equal(s.Addresses[1]) {
		t.Fatalf("the two copies of %s compare equal: %v", s.Addresses[0].Addr, s.Addresses[:2])
	}
}

func TestSchemeOverrideResolvesTheLibrarySchemeTarget(t *testing.T) {
	b := NewBuilder("pass", WithScheme("static"))
	if b.Scheme() != "static" {
		t.Fatalf("Scheme() = %q, want static", b.Scheme())
	}
	_, cc := buildResolver(t, b, "static:///127.0.0.1:7001#2")
	s := cc.waitState(t, 5*time.Second, func(resolver.State) bool { return true })
	if got, want := addrList(s), []string{"127.0.0.1:7001#0(w=1)", "127.0.0.1:7001#1(w=1)"}; !slices.Equal(got, want) {
		t.Fatalf("addresses:\n got  %v\n want %v", got, want)
	}
}

func TestTargetIsHandedToTheLibraryAsWritten(t *testing.T) {
	b := NewBuilder("etcd", WithScheme("disc"))
	for _, tc := range []struct{ in, want string }{
		{"disc:///echo", "etcd:///echo"},
		{"disc://prod/echo#2", "etcd://prod/echo#2"},
		{"disc://127.0.0.1:2379/a/b%20c", "etcd://127.0.0.1:2379/a/b%20c"},
		{"disc:///[::1]:80#3,a.test:5#1", "etcd:///[::1]:80#3,a.test:5#1"},
		{"disc:echo", "etcd:echo"},
		{"disc:///svc?x=1", "etcd:///svc?x=1"},
	} {
		u, err := url.Parse(tc.in)
		if err != nil {
			t.Fatalf("url.Parse(%q): %v", tc.in, err)
		}
		if got := b.libTarget(resolver.Target{URL: *u}); got != tc.want {
			t.Errorf("libTarget(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestBadTargetFailsBuildWithTheLibraryStatus(t *testing.T) {
	before := liveHandles.Load()
	u, _ := url.Parse("pass:///127.0.0.1:notaport")
	_, err := NewBuilder("pass").Build(resolver.Target{URL: *u}, newRecordingConn(), resolver.BuildOptions{})
	var gerr *Error
	if !errors.As(err, &gerr) || gerr.Status != StatusInvalidTarget {
		t.Fatalf("Build error = %v, want a *gnaming.Error with %v", err, StatusInvalidTarget)
	}
	if after := liveHandles.Load(); after != before {
		t.Fatalf("live callback handles went from %d to %d: a failed start must drop its closure", before, after)
	}
}

func TestCloseIsIdempotentAndStopsUpdates(t *testing.T) {
	r, cc := buildResolver(t, NewBuilder("pass"), "pass:///127.0.0.1:7001")
	cc.waitState(t, 5*time.Second, func(resolver.State) bool { return true })
	r.Close()
	r.Close()
	r.ResolveNow(resolver.ResolveNowOptions{})
	states, errs := cc.snapshot()
	time.Sleep(50 * time.Millisecond)
	states2, errs2 := cc.snapshot()
	if len(states2) != len(states) || len(errs2) != len(errs) {
		t.Fatalf("updates after Close: %d states and %d errors before, %d and %d after", len(states), len(errs), len(states2), len(errs2))
	}
}

func TestChannelOnPassTargetReachesEveryServer(t *testing.T) {
	a, b := startServer(t, 0), startServer(t, 0)
	_, client := dial(t, fmt.Sprintf("pass:///%s,%s", a.Addr, b.Addr))
	got, err := serversAnswering(context.Background(), client, 20)
	if err != nil {
		t.Fatal(err)
	}
	if want := sortedAddrs(a, b); !slices.Equal(got, want) {
		t.Fatalf("servers answering:\n got  %v\n want %v", got, want)
	}
}

func TestDNSSchemeUnderAnotherNameResolvesThroughTheLibrary(t *testing.T) {
	// An IP literal needs no DNS server, so this runs on any machine; it shows the dns scheme is
	// served by libgnaming under a name that leaves grpc-go's own "dns" alone.
	_, cc := buildResolver(t, NewBuilder("dns", WithScheme("gndns")), "gndns:///127.0.0.1:7004")
	s := cc.waitState(t, 5*time.Second, func(resolver.State) bool { return true })
	if got, want := addrList(s), []string{"127.0.0.1:7004#0(w=1)"}; !slices.Equal(got, want) {
		t.Fatalf("addresses:\n got  %v\n want %v", got, want)
	}
}
