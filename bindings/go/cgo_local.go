//go:build !gnaming_pkgconfig

package gnaming

// By default the package builds against the checkout it sits in: the header in include/ and the
// library `make` builds in target/release, found again at run time through the rpath. CGO_CFLAGS,
// CGO_LDFLAGS and LD_LIBRARY_PATH come first, so they override both; the gnaming_pkgconfig build tag
// uses an installed copy instead (`make install` writes gnaming.pc).

// #cgo CFLAGS: -I${SRCDIR}/../../include
// #cgo LDFLAGS: -L${SRCDIR}/../../target/release -lgnaming -Wl,-rpath,${SRCDIR}/../../target/release
import "C"
