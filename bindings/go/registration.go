package gnaming

// Registration for servers: libgnaming keeps `<service>/<addr>` in etcd under a lease, re-creating it
// after outages, in the JSON format of etcd's own Go naming packages so either side can be Go's
// etcd client or libgnaming.

// #include <stdlib.h>
// #include "gnaming.h"
import "C"

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"
	"unsafe"
)

// RegistrationState says where a registration stands.
type RegistrationState int

// The values of gn_registration_state.
const (
	// Registering: the first attempt is under way.
	Registering RegistrationState = C.GN_REGISTRATION_STATE_REGISTERING
	// Registered: the key is in etcd and its lease is kept alive.
	Registered RegistrationState = C.GN_REGISTRATION_STATE_REGISTERED
	// Retrying: etcd could not be reached or the lease was lost; libgnaming keeps trying.
	Retrying RegistrationState = C.GN_REGISTRATION_STATE_RETRYING
	// Closed: Close ran.
	Closed RegistrationState = C.GN_REGISTRATION_STATE_CLOSED
	// WarmingUp: waiting out WithWarmup's delay; nothing is in etcd yet.
	WarmingUp RegistrationState = C.GN_REGISTRATION_STATE_WARMING_UP
)

func (s RegistrationState) String() string {
	switch s {
	case Registering:
		return "registering"
	case Registered:
		return "registered"
	case Retrying:
		return "retrying"
	case Closed:
		return "closed"
	case WarmingUp:
		return "warming up"
	}
	return fmt.Sprintf("RegistrationState(%d)", int(s))
}

// closeTimeout bounds how long Close waits for etcd to delete the key; past it the lease still
// removes the key when its TTL runs out.
const closeTimeout = 5 * time.Second

// waitSlice is how often Register looks at its context while waiting for the first registration:
// the C wait cannot watch a Go context.
const waitSlice = 100 * time.Millisecond

// RegisterOption changes how Register registers.
type RegisterOption func(*registerConfig)

type registerConfig struct {
	warmup time.Duration
	format string
}

// WithWarmup makes Register write nothing to etcd until d has passed (state WarmingUp meanwhile), so
// that clients reach the server only once it is warm. Close or Drain during the warm-up writes nothing.
func WithWarmup(d time.Duration) RegisterOption {
	return func(c *registerConfig) { c.warmup = d }
}

// WithFormat writes the registration in another framework's document and key layout, so that its
// own discovery finds the server: "etcd" (the default), "kratos" or "go-micro". With "kratos" and
// "go-micro" the service is a name under the framework's default prefix ("echo" becomes
// "/microservices/echo" or "/micro/registry/echo") or, starting with '/', the prefix itself; the
// metadata must be a flat object of strings, numbers or booleans; clients resolve
// "etcd:///" + prefix, e.g. "etcd:////microservices/echo". libgnaming checks the name: another one
// makes Register fail with StatusInvalidArgument.
func WithFormat(name string) RegisterOption {
	return func(c *registerConfig) { c.format = name }
}

// Registration is a server's entry in etcd, kept alive by libgnaming until Close or Drain.
type Registration struct {
	mu sync.Mutex
	c  *C.gn_registration
}

// Register announces addr ("host:port") as an instance of service in the etcd cluster named by
// cluster ("" for the default cluster, a name given to RegisterCluster, or a single "host:port"
// endpoint), with metadata (anything encoding/json can marshal, or nil; a numeric "weight" in it sets
// the entry's weight) under a lease of ttl (0 for libgnaming's default of 10 s; at least 1 s).
// A service written as a zk: target ("zk://host:port/path", "zk://NAME/path" on an ensemble given
// to RegisterZkEnsemble, "zk:///path") registers an ephemeral Curator node in ZooKeeper instead,
// cluster then "" and ttl the session timeout.
//
// It returns once the entry is in etcd (after the warm-up of WithWarmup, if given: ctx must leave time
// for it). If ctx ends first, the registration is withdrawn and ctx's error returned. After that
// libgnaming keeps the entry alive and re-creates it after an etcd outage until Close or Drain.
func Register(ctx context.Context, cluster, service, addr string, metadata any, ttl time.Duration, options ...RegisterOption) (*Registration, error) {
	if err := checkABI(); err != nil {
		return nil, err
	}
	opts := C.gn_registration_options_new()
	defer C.gn_registration_options_free(opts)
	var cerr *C.gn_error
	if cluster != "" {
		cs := C.CString(cluster)
		defer C.free(unsafe.Pointer(cs))
		if st := C.gn_registration_options_set_cluster(opts, cs, &cerr); st != C.GN_STATUS_OK {
			return nil, takeError(st, cerr)
		}
	}
	if ttl != 0 {
		ms := ttl.Milliseconds()
		if ms <= 0 || ms > math.MaxUint32 {
			return nil, &Error{Status: StatusInvalidArgument, Message: fmt.Sprintf("ttl %v is out of range", ttl)}
		}
		if st := C.gn_registration_options_set_ttl_ms(opts, C.uint32_t(ms), &cerr); st != C.GN_STATUS_OK {
			return nil, takeError(st, cerr)
		}
	}
	if metadata != nil {
		js, err := json.Marshal(metadata)
		if err != nil {
			return nil, fmt.Errorf("gnaming: metadata for %s/%s: %w", service, addr, err)
		}
		cjs := C.CString(string(js))
		defer C.free(unsafe.Pointer(cjs))
		if st := C.gn_registration_options_set_metadata_json(opts, cjs, &cerr); st != C.GN_STATUS_OK {
			return nil, takeError(st, cerr)
		}
	}
	var config registerConfig
	for _, o := range options {
		o(&config)
	}
	if config.warmup != 0 {
		ms := config.warmup.Milliseconds()
		if ms <= 0 || ms > math.MaxUint32 {
			return nil, &Error{Status: StatusInvalidArgument, Message: fmt.Sprintf("warm-up %v is out of range", config.warmup)}
		}
		if st := C.gn_registration_options_set_warmup_ms(opts, C.uint32_t(ms), &cerr); st != C.GN_STATUS_OK {
			return nil, takeError(st, cerr)
		}
	}
	if config.format != "" {
		cf := C.CString(config.format)
		defer C.free(unsafe.Pointer(cf))
		if st := C.gn_registration_options_set_format(opts, cf, &cerr); st != C.GN_STATUS_OK {
			return nil, takeError(st, cerr)
		}
	}
	csvc, caddr := C.CString(service), C.CString(addr)
	defer C.free(unsafe.Pointer(csvc))
	defer C.free(unsafe.Pointer(caddr))
	var c *C.gn_registration
	if st := C.gn_registration_start(csvc, caddr, opts, &c, &cerr); st != C.GN_STATUS_OK {
		return nil, takeError(st, cerr)
	}
	r := &Registration{c: c}
	if err := r.waitRegistered(ctx); err != nil {
		r.Close()
		return nil, err
	}
	return r, nil
}

func (r *Registration) waitRegistered(ctx context.Context) error {
	for {
		slice := waitSlice
		if d, ok := ctx.Deadline(); ok && time.Until(d) < slice {
			slice = max(time.Until(d), 0)
		}
		var cerr *C.gn_error
		st := C.gn_registration_wait(r.c, C.int64_t(slice.Milliseconds()), &cerr)
		switch {
		case st == C.GN_STATUS_OK:
			return nil
		case st != C.GN_STATUS_TIMEOUT:
			return takeError(st, cerr)
		}
		C.gn_error_free(cerr)
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("gnaming: registering: %w (state %v)", err, r.State())
		}
	}
}

// State is where the registration stands now.
func (r *Registration) State() RegistrationState {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.c == nil {
		return Closed
	}
	return RegistrationState(C.gn_registration_get_state(r.c))
}

// Close deletes the entry from etcd, so watching clients drop it at once, and stops keeping it
// alive. It waits at most 5 s for etcd; if etcd is unreachable the entry goes when its lease
// expires, and the error says so. Idempotent: later calls return nil.
func (r *Registration) Close() error {
	return r.finish(func(c *C.gn_registration, cerr **C.gn_error) C.enum_gn_status {
		return C.gn_registration_close(c, C.uint32_t(closeTimeout.Milliseconds()), cerr)
	})
}

// finish takes the handle, so that later calls find it closed, ends the registration with end (a C
// close or drain) and frees it. Nothing to do when an earlier call took it.
func (r *Registration) finish(end func(*C.gn_registration, **C.gn_error) C.enum_gn_status) error {
	r.mu.Lock()
	c := r.c
	r.c = nil
	r.mu.Unlock()
	if c == nil {
		return nil
	}
	defer C.gn_registration_free(c)
	var cerr *C.gn_error
	if st := end(c, &cerr); st != C.GN_STATUS_OK {
		return takeError(st, cerr)
	}
	return nil
}

// Drain takes the entry out of etcd so the server can stop without failing an RPC: it deletes it,
// then waits d, counted from etcd's confirmation, for clients to see that and stop picking this
// address while the server keeps answering, and returns; then stop the server (GracefulStop lets RPCs
// in flight finish). While etcd is unreachable the deletion is retried until ctx's deadline (5 s
// without one); if etcd has not confirmed by then, Drain still waits d and returns the error (the
// entry goes when its lease expires). The registration is closed afterwards; a second Drain or Close returns nil at once. It must not be
// called from a resolver callback (it blocks there; libgnaming refuses with StatusBadState).
func (r *Registration) Drain(ctx context.Context, d time.Duration) error {
	ms := d.Milliseconds()
	if ms < 0 || ms > math.MaxUint32 {
		return &Error{Status: StatusInvalidArgument, Message: fmt.Sprintf("drain %v is out of range", d)}
	}
	timeout := closeTimeout
	if deadline, ok := ctx.Deadline(); ok {
		timeout = max(time.Until(deadline), 0)
	}
	return r.finish(func(c *C.gn_registration, cerr **C.gn_error) C.enum_gn_status {
		return C.gn_registration_drain(c, C.uint32_t(ms), C.uint32_t(min(timeout.Milliseconds(), math.MaxUint32)), cerr)
	})
}

// GracefulStopper is what GracefulStop stops; *grpc.Server is one.
type GracefulStopper interface{ GracefulStop() }

// GracefulStop takes a server out of discovery before stopping it: it closes the registrations, so
// clients watching etcd stop sending new RPCs here, waits drain for that news to reach them, then
// calls srv.GracefulStop, which lets RPCs in flight finish. The registrations' errors are joined.
func GracefulStop(srv GracefulStopper, drain time.Duration, regs ...*Registration) error {
	var errs []error
	for _, r := range regs {
		if err := r.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	time.Sleep(drain)
	srv.GracefulStop()
	return errors.Join(errs...)
}
