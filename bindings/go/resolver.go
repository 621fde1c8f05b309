package gnaming

// grpc-go resolvers over libgnaming. Build starts a libgnaming resolver whose updates arrive on a
// library thread and go straight to the ClientConn; Close stops it, and libgnaming guarantees that
// no callback is running or will start once that returns. Both are a few cgo calls, because grpc-go
// builds a new resolver every time a channel leaves idle.

/*
#include <stdint.h>
#include <stdlib.h>
#include "gnaming.h"

gn_update_callback gnaming_update_callback(uintptr_t handle);
*/
import "C"

import (
	"fmt"
	"runtime/cgo"
	"sync"
	"sync/atomic"
	"unsafe"

	"google.golang.org/grpc/grpclog"
	"google.golang.org/grpc/resolver"
)

var logger = grpclog.Component("gnaming")

// liveHandles counts resolvers whose closure libgnaming has not dropped yet.
var liveHandles atomic.Int64

// Schemes lists the libgnaming schemes RegisterResolvers installs. DNS is left to grpc-go's own
// resolver unless asked for with NewBuilder("dns", ...).
var Schemes = []string{"etcd", "pass", "zk"}

// BuilderOption changes a Builder made by NewBuilder.
type BuilderOption func(*Builder)

// WithScheme makes the builder answer to name in grpc-go target strings instead of its libgnaming
// scheme: NewBuilder("etcd", WithScheme("discovery")) resolves "discovery:///echo" as "etcd:///echo".
func WithScheme(name string) BuilderOption {
	return func(b *Builder) { b.scheme = name }
}

// Builder is a resolver.Builder for one libgnaming scheme. Use it with grpc.WithResolvers for one
// channel, or register it with resolver.Register (RegisterResolvers does that for Schemes).
type Builder struct {
	libScheme string
	scheme    string
}

// NewBuilder returns a builder for the libgnaming scheme libScheme ("etcd", "pass", "dns", ...).
func NewBuilder(libScheme string, opts ...BuilderOption) *Builder {
	b := &Builder{libScheme: libScheme, scheme: libScheme}
	for _, opt := range opts {
		opt(b)
	}
	return b
}

// RegisterResolvers registers a Builder for each of Schemes with grpc-go, so target strings such as
// "etcd:///echo" and "pass:///10.0.0.1:50051#2" work in grpc.NewClient. Like resolver.Register, call
// it during initialization, before creating channels.
func RegisterResolvers() {
	for _, s := range Schemes {
		resolver.Register(NewBuilder(s))
	}
}

// Scheme is the scheme grpc-go sees.
func (b *Builder) Scheme() string { return b.scheme }

// Build starts resolving t. The first update follows on a library thread.
func (b *Builder) Build(t resolver.Target, cc resolver.ClientConn, opts resolver.BuildOptions) (resolver.Resolver, error) {
	if err := checkABI(); err != nil {
		return nil, err
	}
	target := b.libTarget(t)
	r := &gnResolver{target: target, cc: cc, disableServiceConfig: opts.DisableServiceConfig}

	copts := C.gn_resolver_options_new()
	defer C.gn_resolver_options_free(copts)
	lang := C.CString("go")
	defer C.free(unsafe.Pointer(lang))
	var cerr *C.gn_error
	if st := C.gn_resolver_options_set_client_language(copts, lang, &cerr); st != C.GN_STATUS_OK {
		return nil, takeError(st, cerr)
	}

	ctarget := C.CString(target)
	defer C.free(unsafe.Pointer(ctarget))
	// From here libgnaming owns the handle and deletes it in drop, also when the start fails.
	h := cgo.NewHandle(r)
	liveHandles.Add(1)
	var c *C.gn_resolver
	if st := C.gn_resolver_start(ctarget, copts, C.gnaming_update_callback(C.uintptr_t(h)), &c, &cerr); st != C.GN_STATUS_OK {
		return nil, takeError(st, cerr)
	}
	r.mu.Lock()
	r.c = c
	r.mu.Unlock()
	return r, nil
}

// libTarget rewrites a grpc-go target into the libgnaming target it stands for, keeping the parts
// grpc-go's URL parser splits off (`#N` lands in the fragment) as the user wrote them.
func (b *Builder) libTarget(t resolver.Target) string {
	u := t.URL
	s := b.libScheme + ":"
	if u.Opaque != "" {
		s += u.Opaque
	} else {
		s += "//" + u.Host + u.EscapedPath()
	}
	if u.ForceQuery || u.RawQuery != "" {
		s += "?" + u.RawQuery
	}
	// A fragment holding another '#' ("a#2,b#1") is only kept as typed in RawFragment.
	if u.RawFragment != "" {
		s += "#" + u.RawFragment
	} else if u.Fragment != "" {
		s += "#" + u.EscapedFragment()
	}
	return s
}

type gnResolver struct {
	target               string
	cc                   resolver.ClientConn
	disableServiceConfig bool

	// mu keeps ResolveNow off a freed handle; Close frees outside it, so an update in flight that
	// ends up calling ResolveNow cannot deadlock against Close waiting for that update.
	mu sync.Mutex
	c  *C.gn_resolver

	// handedList is whether grpc-go got a list from this resolver; only onUpdate touches it, and
	// libgnaming serialises those calls.
	handedList bool
}

// ResolveNow asks libgnaming to look again; backends rate-limit it, static targets ignore it.
func (r *gnResolver) ResolveNow(resolver.ResolveNowOptions) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.c != nil {
		C.gn_resolver_resolve_now(r.c, nil)
	}
}

// Close stops the resolver; once it returns no update reaches the ClientConn. Idempotent.
func (r *gnResolver) Close() {
	r.mu.Lock()
	c := r.c
	r.c = nil
	r.mu.Unlock()
	C.gn_resolver_free(c)
}

// onUpdate runs on a libgnaming thread, one call at a time per resolver, each with the latest
// complete list.
func (r *gnResolver) onUpdate(u *C.gn_update) {
	if C.gn_update_state(u) == C.GN_RESOLVER_STATE_TRANSIENT_ERROR {
		message := C.GoString(C.gn_update_error_message(u))
		// Before any list, an error carrying one is the cold-start cache's: hand it on so RPCs go to
		// those servers while the source is unreachable. Otherwise the last good list stays in
		// grpc-go: an error must never look like "no servers".
		if r.handedList || C.gn_update_address_count(u) == 0 {
			r.cc.ReportError(fmt.Errorf("gnaming: resolving %s: %s", r.target, message))
			return
		}
		logger.Infof("resolving %s: %s", r.target, message)
	}
	n := int(C.gn_update_address_count(u))
	state := resolver.State{
		Addresses: make([]resolver.Address, 0, n),
		Endpoints: make([]resolver.Endpoint, 0, n),
	}
	for i := range n {
		a := C.gn_update_address(u, C.size_t(i))
		// grpclb balancer entries (DNS SRV) need grpc-go's deprecated grpclb policy; serve backends only.
		if a == nil || a.kind != C.GN_ADDRESS_KIND_BACKEND {
			continue
		}
		info := AddressInfo{Weight: uint32(a.weight), CopyIndex: uint32(a.copy_index)}
		if a.metadata_json != nil {
			info.Metadata = C.GoString(a.metadata_json)
		}
		attrs := attributesFor(info)
		addr := resolver.Address{Addr: C.GoString(a.addr), Attributes: attrs}
		state.Addresses = append(state.Addresses, addr)
		state.Endpoints = append(state.Endpoints, resolver.Endpoint{Addresses: []resolver.Address{addr}, Attributes: attrs})
	}
	if sc := C.gn_update_service_config(u); sc != nil && !r.disableServiceConfig {
		state.ServiceConfig = r.cc.ParseServiceConfig(C.GoString(sc))
	}
	r.handedList = true
	if err := r.cc.UpdateState(state); err != nil {
		logger.Infof("resolving %s: grpc-go did not take %d addresses: %v", r.target, len(state.Addresses), err)
	}
}
