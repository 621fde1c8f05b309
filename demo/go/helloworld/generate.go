// Package helloworld is the greeter of examples/cpp/helloworld.proto for Go, generated with
// protoc-gen-go and protoc-gen-go-grpc (`go generate` with both on PATH).
package helloworld

//go:generate protoc -I ../../../examples/cpp --go_out=. --go_opt=paths=source_relative --go_opt=Mhelloworld.proto=github.com/libgnaming/libgnaming/demo/go/helloworld --go-grpc_out=. --go-grpc_opt=paths=source_relative --go-grpc_opt=Mhelloworld.proto=github.com/libgnaming/libgnaming/demo/go/helloworld helloworld.proto
