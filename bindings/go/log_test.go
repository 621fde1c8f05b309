package gnaming

import (
	"context"
	"testing"
	"time"
)

func TestForwardLogsSendsLibraryWarningsToGrpclog(t *testing.T) {
	if err := ForwardLogs(LogWarn); err != nil {
		t.Fatalf("ForwardLogs: %v", err)
	}
	defer ForwardLogs(LogOff)
	// A registration against a port nothing listens on logs a warning for each failed attempt.
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if reg, err := Register(ctx, "127.0.0.1:1", "gotest/logs", "127.0.0.1:9", nil, 0); err == nil {
		reg.Close()
		t.Fatal("Register against an unreachable etcd succeeded")
	}
	waitFor(t, 5*time.Second, func() bool { return grpcWarnings.contains("WARNING", "[gnaming]", "gnaming::etcd", "127.0.0.1:1") },
		func() string {
			grpcWarnings.mu.Lock()
			defer grpcWarnings.mu.Unlock()
			return "no libgnaming warning about etcd at 127.0.0.1:1 reached grpclog; it has:\n" + string(grpcWarnings.buf)
		})
}
