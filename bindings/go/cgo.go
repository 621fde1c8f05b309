package gnaming

// The C side of the package: the closure helpers that turn a cgo.Handle into callback user data, and
// the check that the loaded library speaks the ABI this package was compiled against.

/*
#include <stdint.h>
#include <stdlib.h>
#include "gnaming.h"

// The exported Go trampolines (callbacks.go); cgo declares them without const.
extern void gnamingGoUpdate(void *user_data, gn_update *update);
extern void gnamingGoDrop(void *user_data);
extern void gnamingGoLog(gn_log_level level, char *target, char *message);

static void gnaming_call_update(void *user_data, const gn_update *update) {
	gnamingGoUpdate(user_data, (gn_update *)update);
}

static void gnaming_call_log(void *user_data, gn_log_level level, const char *target, const char *message) {
	(void)user_data;
	gnamingGoLog(level, (char *)target, (char *)message);
}

// Not static: log.go calls it.
gn_log_callback gnaming_log_callback(void) {
	gn_log_callback cb = { NULL, gnaming_call_log, NULL };
	return cb;
}

// The handle travels as user data; the integer-to-pointer cast happens here so Go never forges a
// pointer from an integer. Not static: resolver.go calls it.
gn_update_callback gnaming_update_callback(uintptr_t handle) {
	gn_update_callback cb = { (void *)handle, gnaming_call_update, gnamingGoDrop };
	return cb;
}
*/
import "C"

import (
	"fmt"
	"sync"
)

// ABIVersion is the libgnaming ABI this package was compiled against.
const ABIVersion = uint32(C.GN_ABI_VERSION)

// checkABI fails every entry point, with a message saying what to rebuild, when the loaded
// libgnaming.so is not the one the header describes.
var checkABI = sync.OnceValue(func() error {
	if got := uint32(C.gn_abi_version()); got != ABIVersion {
		return fmt.Errorf("gnaming: the loaded libgnaming %s has ABI version %d, but this package was built "+
			"against ABI version %d (header %s): rebuild the library and this package from the same checkout",
			C.GoString(C.gn_version()), got, ABIVersion, C.GN_VERSION_STRING)
	}
	return nil
})

// Version is the loaded library's version, "MAJOR.MINOR.PATCH".
func Version() string {
	return C.GoString(C.gn_version())
}
