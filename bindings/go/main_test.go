package gnaming

import (
	"os"
	"strings"
	"sync"
	"testing"

	"google.golang.org/grpc/grpclog"
)

// grpcWarnings keeps what grpc-go logs at warning level and above (the tail of it), so a test can see
// what reached grpclog; grpclog.SetLoggerV2 must run before any other grpc-go call.
var grpcWarnings = &tailBuffer{max: 64 << 10}

func TestMain(m *testing.M) {
	if spec := os.Getenv(childServerEnv); spec != "" {
		serveAsChild(spec)
	}
	grpclog.SetLoggerV2(grpclog.NewLoggerV2(discard{}, grpcWarnings, grpcWarnings))
	RegisterResolvers()
	RegisterBalancer()
	os.Exit(m.Run())
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// tailBuffer is a writer that keeps the last max bytes written to it, safe for concurrent use.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if len(b.buf) > b.max {
		b.buf = append([]byte(nil), b.buf[len(b.buf)-b.max:]...)
	}
	return len(p), nil
}

// contains reports whether the kept text has a line with every one of parts.
func (b *tailBuffer) contains(parts ...string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	for line := range strings.SplitSeq(string(b.buf), "\n") {
		all := true
		for _, p := range parts {
			all = all && strings.Contains(line, p)
		}
		if all {
			return true
		}
	}
	return false
}
