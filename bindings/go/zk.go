package gnaming

// Named ZooKeeper ensembles, for targets "zk://NAME/path" and registrations of "zk://NAME/path".

// #include "gnaming.h"
import "C"

// ZkEnsemble describes how to reach a ZooKeeper ensemble and what registrations create there.
type ZkEnsemble struct {
	// Servers is a ZooKeeper connect string: "host:port,host:port" with an optional chroot
	// ("/apps/prod") below which every node path lies.
	Servers string
	// DigestUser and DigestPassword, when DigestUser is set, authenticate every session with
	// ZooKeeper's "digest" scheme.
	DigestUser, DigestPassword string
	// NodeACL is the ACL of the nodes registrations create: "open" (the default when empty),
	// "creator-all" or "creator-all-anyone-read"; the creator ACLs need digest credentials.
	NodeACL string
}

// RegisterZkEnsemble makes ensemble usable under name ("" replaces the default ensemble of
// "zk:///path", otherwise GNAMING_ZK_SERVERS or 127.0.0.1:2181, whose credentials also serve
// "zk://host:port/path"). Resolvers and registrations started afterwards use it.
func RegisterZkEnsemble(name string, ensemble ZkEnsemble) error {
	if err := checkABI(); err != nil {
		return err
	}
	o := C.gn_zk_options_new()
	defer C.gn_zk_options_free(o)
	var cs cstrings
	defer cs.free()
	var cerr *C.gn_error
	check := func(st C.enum_gn_status) error {
		if st != C.GN_STATUS_OK {
			return takeError(st, cerr)
		}
		return nil
	}
	if err := check(C.gn_zk_options_set_servers(o, cs.of(ensemble.Servers), &cerr)); err != nil {
		return err
	}
	if ensemble.DigestUser != "" {
		if err := check(C.gn_zk_options_set_digest(o, cs.of(ensemble.DigestUser), cs.of(ensemble.DigestPassword), &cerr)); err != nil {
			return err
		}
	}
	if ensemble.NodeACL != "" {
		if err := check(C.gn_zk_options_set_node_acl(o, cs.of(ensemble.NodeACL), &cerr)); err != nil {
			return err
		}
	}
	return check(C.gn_zk_register(cs.of(name), o, &cerr))
}
