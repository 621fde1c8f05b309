package gnaming

// #include "gnaming.h"
import "C"

// StatsJSON returns libgnaming's counters (resolvers, registrations, etcd connections...) as JSON.
func StatsJSON() (string, error) {
	if err := checkABI(); err != nil {
		return "", err
	}
	var js *C.char
	var cerr *C.gn_error
	if st := C.gn_stats_json(&js, &cerr); st != C.GN_STATUS_OK {
		return "", takeError(st, cerr)
	}
	defer C.gn_string_free(js)
	return C.GoString(js), nil
}
