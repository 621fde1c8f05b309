package gnaming

// Named etcd clusters, for targets "etcd://NAME/service" and Register's cluster argument.

// #include <stdlib.h>
// #include "gnaming.h"
import "C"

import (
	"fmt"
	"math"
	"strings"
	"time"
	"unsafe"
)

// Cluster describes how to reach an etcd cluster. Zero fields keep libgnaming's defaults.
type Cluster struct {
	// Endpoints are "host:port" or "http(s)://host:port" client URLs.
	Endpoints []string
	// DialTimeout bounds connecting to a member.
	DialTimeout time.Duration
	// RequestTimeout bounds each request.
	RequestTimeout time.Duration
	// CA, Cert and Key are PEM files for TLS; CA alone verifies the servers, Cert and Key add a
	// client certificate.
	CA, Cert, Key string
	// Username and Password log in with etcd's auth.
	Username, Password string
}

// RegisterCluster makes cluster usable under name ("" replaces the default cluster, otherwise used
// through GNAMING_ETCD_ENDPOINTS or 127.0.0.1:2379).
func RegisterCluster(name string, cluster Cluster) error {
	if err := checkABI(); err != nil {
		return err
	}
	o := C.gn_cluster_options_new()
	defer C.gn_cluster_options_free(o)
	var cs cstrings
	defer cs.free()
	var cerr *C.gn_error
	check := func(st C.enum_gn_status) error {
		if st != C.GN_STATUS_OK {
			return takeError(st, cerr)
		}
		return nil
	}
	if err := check(C.gn_cluster_options_set_endpoints(o, cs.of(strings.Join(cluster.Endpoints, ",")), &cerr)); err != nil {
		return err
	}
	if cluster.DialTimeout != 0 {
		ms, err := millis("DialTimeout", cluster.DialTimeout)
		if err != nil {
			return err
		}
		if err := check(C.gn_cluster_options_set_dial_timeout_ms(o, ms, &cerr)); err != nil {
			return err
		}
	}
	if cluster.RequestTimeout != 0 {
		ms, err := millis("RequestTimeout", cluster.RequestTimeout)
		if err != nil {
			return err
		}
		if err := check(C.gn_cluster_options_set_request_timeout_ms(o, ms, &cerr)); err != nil {
			return err
		}
	}
	if cluster.CA != "" || cluster.Cert != "" || cluster.Key != "" {
		if err := check(C.gn_cluster_options_set_tls(o, cs.orNil(cluster.CA), cs.orNil(cluster.Cert), cs.orNil(cluster.Key), &cerr)); err != nil {
			return err
		}
	}
	if cluster.Username != "" {
		if err := check(C.gn_cluster_options_set_auth(o, cs.of(cluster.Username), cs.of(cluster.Password), &cerr)); err != nil {
			return err
		}
	}
	return check(C.gn_cluster_register(cs.of(name), o, &cerr))
}

func millis(field string, d time.Duration) (C.uint32_t, error) {
	ms := d.Milliseconds()
	if ms <= 0 || ms > math.MaxUint32 {
		return 0, &Error{Status: StatusInvalidArgument, Message: fmt.Sprintf("%s %v is out of range", field, d)}
	}
	return C.uint32_t(ms), nil
}

// cstrings hands out C copies of Go strings and frees them together.
type cstrings []*C.char

func (cs *cstrings) of(s string) *C.char {
	c := C.CString(s)
	*cs = append(*cs, c)
	return c
}

// orNil is of(s), or NULL for "".
func (cs *cstrings) orNil(s string) *C.char {
	if s == "" {
		return nil
	}
	return cs.of(s)
}

func (cs *cstrings) free() {
	for _, c := range *cs {
		C.free(unsafe.Pointer(c))
	}
}
