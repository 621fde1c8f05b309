package gnaming

// Tests against the real ZooKeeper server that tests/harness/zk_ensemble.py starts around the test
// binary (GNAMING_TEST_ZK_SERVERS); `make test-go` runs them that way.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// A server registered through a named ensemble with digest credentials and the creator-all,
// anyone-read ACL is reached by grpc-go through "zk://" targets: on the name, and on the bare
// servers without credentials; the registration's close takes it out of the list.
func TestANamedZkEnsembleWithDigestCredentialsServesGrpcGo(t *testing.T) {
	servers := os.Getenv("GNAMING_TEST_ZK_SERVERS")
	if servers == "" {
		t.Skip("no ZooKeeper: run under `python3 tests/harness/zk_ensemble.py run -- go test ...` (make test-go does)")
	}
	ensemble := ZkEnsemble{Servers: servers, DigestUser: "svc", DigestPassword: "right", NodeACL: "creator-all-anyone-read"}
	if err := RegisterZkEnsemble("go-secured", ensemble); err != nil {
		t.Fatalf("RegisterZkEnsemble: %v", err)
	}
	path := fmt.Sprintf("gotest/zk%d/echo", time.Now().UnixNano())
	s := startServer(t, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	reg, err := Register(ctx, "", "zk://go-secured/"+path, s.Addr, map[string]any{"zone": "a"}, 0)
	if err != nil {
		t.Fatalf("Register: %v", err)
	}
	defer reg.Close()
	for _, target := range []string{"zk://go-secured/" + path, "zk://" + servers + "/" + path} {
		_, client := dial(t, target)
		var got string
		waitFor(t, 10*time.Second, func() bool {
			got, err = call(ctx, client)
			return err == nil && got == s.Addr
		}, func() string { return fmt.Sprintf("%s: answered by %q, %v", target, got, err) })
	}
	if err := reg.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

// The ensemble options are checked by libgnaming, which names what it refuses.
func TestBadZkEnsemblesAreRefusedNamingThePart(t *testing.T) {
	cases := []struct {
		ensemble ZkEnsemble
		part     string
	}{
		{ZkEnsemble{Servers: "zk1"}, "ZooKeeper server 'zk1' in 'zk1' is not host:port"},
		{ZkEnsemble{Servers: "127.0.0.1:2181", NodeACL: "creator-all"}, "a creator ACL needs digest credentials"},
		{ZkEnsemble{Servers: "127.0.0.1:2181", DigestUser: "a:b"}, "user must be non-empty and without ':'"},
		{ZkEnsemble{Servers: "127.0.0.1:2181", DigestUser: "svc", NodeACL: "private"}, "node ACL 'private' is not one of"},
	}
	for _, c := range cases {
		err := RegisterZkEnsemble("go-bad", c.ensemble)
		var gerr *Error
		if !errors.As(err, &gerr) || gerr.Status != StatusInvalidArgument || !strings.Contains(gerr.Message, c.part) {
			t.Errorf("RegisterZkEnsemble(%+v) = %v; want GN_STATUS_INVALID_ARGUMENT with %q", c.ensemble, err, c.part)
		}
	}
}
