package gnaming

// Errors from libgnaming: each failing C call hands back a status and a message in a gn_error object,
// copied here into a Go value and freed at once (no thread-local error state, so goroutines may move
// between OS threads freely).

// #include "gnaming.h"
import "C"

import "math"

// Status is libgnaming's gn_status: why a call failed.
type Status int

// The values of gn_status.
const (
	StatusOK                Status = C.GN_STATUS_OK
	StatusInvalidArgument   Status = C.GN_STATUS_INVALID_ARGUMENT
	StatusInvalidTarget     Status = C.GN_STATUS_INVALID_TARGET
	StatusUnsupportedScheme Status = C.GN_STATUS_UNSUPPORTED_SCHEME
	StatusTimeout           Status = C.GN_STATUS_TIMEOUT
	StatusClosed            Status = C.GN_STATUS_CLOSED
	StatusBadState          Status = C.GN_STATUS_BAD_STATE
	StatusUnavailable       Status = C.GN_STATUS_UNAVAILABLE
	StatusPermissionDenied  Status = C.GN_STATUS_PERMISSION_DENIED
	StatusNotFound          Status = C.GN_STATUS_NOT_FOUND
	StatusRuntime           Status = C.GN_STATUS_RUNTIME
	StatusInternal          Status = C.GN_STATUS_INTERNAL
)

// String is the C name of the status, as in "GN_STATUS_TIMEOUT".
func (s Status) String() string {
	return C.GoString(C.gn_status_name(cEnum(int(s))))
}

// cEnum passes an enum value to C, which takes it as an int and checks it; a value beyond int's range
// becomes -1, which no enum has, rather than wrapping onto one that exists.
func cEnum(v int) C.int {
	if v < math.MinInt32 || v > math.MaxInt32 {
		return -1
	}
	return C.int(v)
}

// Error is a failed libgnaming call. Use errors.As to read its Status.
type Error struct {
	Status  Status
	Message string
}

func (e *Error) Error() string {
	if e.Message == "" {
		return "gnaming: " + e.Status.String()
	}
	return "gnaming: " + e.Message
}

// takeError turns a failed call's status and error object into an *Error and frees the object.
func takeError(status C.enum_gn_status, cerr *C.gn_error) error {
	defer C.gn_error_free(cerr)
	e := &Error{Status: Status(status)}
	if cerr != nil {
		e.Message = C.GoString(C.gn_error_message(cerr))
	}
	return e
}
