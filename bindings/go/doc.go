// Package gnaming connects grpc-go to libgnaming, the service discovery library shared by the Go,
// Python and C++ bindings: target parsing, etcd watching, registration leases and retries all happen
// in libgnaming; this package only turns its updates into grpc-go resolver state.
//
// Clients register resolvers for libgnaming's schemes (explicitly: importing the package changes
// nothing) and, for `#N` connection counts and weights, the weighted balancer:
//
//	gnaming.RegisterResolvers()
//	gnaming.RegisterBalancer()
//	conn, err := grpc.NewClient("etcd:///echo",
//		grpc.WithTransportCredentials(insecure.NewCredentials()),
//		grpc.WithDefaultServiceConfig(gnaming.WeightedServiceConfig))
//
// Servers announce themselves with Register and withdraw with GracefulStop.
//
// The package uses cgo and links libgnaming.so; see README.md for how the build finds it.
package gnaming
