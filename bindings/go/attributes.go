package gnaming

import (
	"google.golang.org/grpc/attributes"
	"google.golang.org/grpc/resolver"
)

// AddressInfo is what libgnaming knows about a resolved entry beyond its address string. The resolver
// attaches it to every resolver.Address and resolver.Endpoint it hands to grpc-go.
type AddressInfo struct {
	// Weight is the entry's relative share of traffic, at least 1 (from a numeric "weight" in the
	// registration's metadata, else 1).
	Weight uint32
	// CopyIndex tells apart entries with the same address when a target asks for N connections to
	// it (`#N`): 0..N-1. Being part of the attributes, it makes grpc-go keep such entries apart.
	CopyIndex uint32
	// Metadata is the entry's metadata as JSON text, exactly as the source had it; "" when none.
	Metadata string
}

// addressInfoKey is the attributes key of AddressInfo; unexported so only this package sets it.
type addressInfoKey struct{}

func attributesFor(info AddressInfo) *attributes.Attributes {
	return attributes.New(addressInfoKey{}, info)
}

// GetAddressInfo returns the AddressInfo the resolver attached to addr, and false for an address that
// did not come from it.
func GetAddressInfo(addr resolver.Address) (AddressInfo, bool) {
	info, ok := addr.Attributes.Value(addressInfoKey{}).(AddressInfo)
	return info, ok
}

// GetEndpointInfo returns the AddressInfo the resolver attached to an endpoint, and false for an
// endpoint that did not come from it.
func GetEndpointInfo(ep resolver.Endpoint) (AddressInfo, bool) {
	info, ok := ep.Attributes.Value(addressInfoKey{}).(AddressInfo)
	return info, ok
}
