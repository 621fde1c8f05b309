package gnaming

import (
	"errors"
	"math"
	"testing"
)

// C takes enums as integers and checks them, so any Go value gives a clear answer.
func TestUnknownEnumValuesGiveAClearResult(t *testing.T) {
	if got := StatusTimeout.String(); got != "GN_STATUS_TIMEOUT" {
		t.Errorf("StatusTimeout.String() = %q", got)
	}
	for _, s := range []Status{12, 42, -1, math.MaxInt32, math.MinInt32, 1<<32 + 4} {
		if got := s.String(); got != "GN_STATUS_UNKNOWN" {
			t.Errorf("Status(%d).String() = %q, want GN_STATUS_UNKNOWN", int(s), got)
		}
	}
	for _, level := range []LogLevel{6, 9, -3, 1<<32 + 3} {
		err := ForwardLogs(level)
		var gerr *Error
		if !errors.As(err, &gerr) || gerr.Status != StatusInvalidArgument {
			t.Errorf("ForwardLogs(LogLevel(%d)) = %v, want a GN_STATUS_INVALID_ARGUMENT error", int(level), err)
		}
	}
}
