package gnaming

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// WithFormat hands the name to libgnaming, which checks it: nothing is registered under a name it
// does not know.
func TestAnUnknownRegistrationFormatIsRefusedByName(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	reg, err := Register(ctx, "", "echo", "127.0.0.1:1", nil, 0, WithFormat("micro"))
	var gerr *Error
	if !errors.As(err, &gerr) || gerr.Status != StatusInvalidArgument || !strings.Contains(gerr.Message, "etcd, kratos, go-micro") {
		t.Fatalf("Register(WithFormat(\"micro\")) = %v, %v; want a GN_STATUS_INVALID_ARGUMENT error listing the formats", reg, err)
	}
}
