module github.com/libgnaming/libgnaming/tests/chaos/go

go 1.26.0

require (
	github.com/libgnaming/libgnaming/bindings/go v0.0.0
	google.golang.org/grpc v1.85.0
)

require (
	golang.org/x/sys v0.49.0 // indirect
	google.golang.org/protobuf v1.36.12 // indirect
)

replace github.com/libgnaming/libgnaming/bindings/go => ../../../bindings/go
