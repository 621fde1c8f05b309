package gnaming

// The exported trampolines libgnaming calls on its own threads. The user data is a cgo.Handle to the
// Go receiver; drop releases the handle, exactly once, after the last call. A panic must never
// unwind into Rust frames, so each trampoline recovers and logs it.

// #include "gnaming.h"
import "C"

import (
	"runtime/cgo"
	"unsafe"
)

//export gnamingGoUpdate
func gnamingGoUpdate(userData unsafe.Pointer, update *C.gn_update) {
	defer recoverCallback("update")
	cgo.Handle(uintptr(userData)).Value().(*gnResolver).onUpdate(update)
}

//export gnamingGoDrop
func gnamingGoDrop(userData unsafe.Pointer) {
	defer recoverCallback("drop")
	cgo.Handle(uintptr(userData)).Delete()
	liveHandles.Add(-1)
}

//export gnamingGoLog
func gnamingGoLog(level C.gn_log_level, target, message *C.char) {
	defer recoverCallback("log")
	logEvent(LogLevel(level), C.GoString(target), C.GoString(message))
}

func recoverCallback(what string) {
	if p := recover(); p != nil {
		logger.Errorf("panic in the %s callback, recovered so it does not cross into libgnaming: %v", what, p)
	}
}
