//go:build gnaming_pkgconfig

package gnaming

// With the gnaming_pkgconfig build tag the header and library come from an installed copy, found
// through pkg-config (`make install` writes gnaming.pc).

// #cgo pkg-config: gnaming
import "C"
