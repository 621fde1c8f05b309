package gnaming

// libgnaming's log events, forwarded into grpclog so they land wherever the program's grpc-go logs go.

/*
#include "gnaming.h"

gn_log_callback gnaming_log_callback(void);
*/
import "C"

// LogLevel is libgnaming's gn_log_level, most severe first.
type LogLevel int

// The values of gn_log_level.
const (
	LogOff   LogLevel = C.GN_LOG_LEVEL_OFF
	LogError LogLevel = C.GN_LOG_LEVEL_ERROR
	LogWarn  LogLevel = C.GN_LOG_LEVEL_WARN
	LogInfo  LogLevel = C.GN_LOG_LEVEL_INFO
	LogDebug LogLevel = C.GN_LOG_LEVEL_DEBUG
	LogTrace LogLevel = C.GN_LOG_LEVEL_TRACE
)

// ForwardLogs sends libgnaming's log events up to max into grpclog's "gnaming" component: errors as
// errors, warnings as warnings, the rest as info (debug and trace only at verbosity 2 and up, as
// GRPC_GO_LOG_VERBOSITY_LEVEL sets it). LogOff stops forwarding. Independent of GNAMING_LOG, which
// makes libgnaming log to stderr itself.
func ForwardLogs(max LogLevel) error {
	if err := checkABI(); err != nil {
		return err
	}
	var cerr *C.gn_error
	if st := C.gn_log_set_callback(C.gnaming_log_callback(), cEnum(int(max)), &cerr); st != C.GN_STATUS_OK {
		return takeError(st, cerr)
	}
	return nil
}

// logEvent runs on libgnaming threads, possibly several at once; grpclog is safe for that.
func logEvent(level LogLevel, target, message string) {
	switch level {
	case LogError:
		logger.Errorf("%s: %s", target, message)
	case LogWarn:
		logger.Warningf("%s: %s", target, message)
	case LogInfo:
		logger.Infof("%s: %s", target, message)
	default:
		if logger.V(2) {
			logger.Infof("%s: %s", target, message)
		}
	}
}
