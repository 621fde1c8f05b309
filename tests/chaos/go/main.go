// A Go subscriber for the chaos scenarios: builds the Go binding's grpc-go resolver for a target
// (GNAMING_TEST_ETCD_ENDPOINTS is the default cluster) and prints every address list it hands grpc-go,
// as one JSON line each ({"ok":true,"addrs":[...]}; {"ok":false,"error":...} for an error), until
// stdin closes. The resolver is what a grpc-go channel would get; only the channel is replaced by a
// recorder of what reaches it.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	gnaming "github.com/libgnaming/libgnaming/bindings/go"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/serviceconfig"
)

type line struct {
	OK    bool     `json:"ok"`
	Addrs []string `json:"addrs,omitempty"`
	Error string   `json:"error,omitempty"`
}

// recorder stands where grpc-go's channel would, printing what the resolver gives it.
type recorder struct {
	mu  sync.Mutex
	out *bufio.Writer
}

func (r *recorder) emit(l line) {
	r.mu.Lock()
	defer r.mu.Unlock()
	b, _ := json.Marshal(l)
	r.out.Write(append(b, '\n'))
	r.out.Flush()
}

func (r *recorder) UpdateState(s resolver.State) error {
	addrs := make([]string, 0, len(s.Endpoints)+len(s.Addresses))
	for _, e := range s.Endpoints {
		for _, a := range e.Addresses {
			addrs = append(addrs, a.Addr)
		}
	}
	if len(s.Endpoints) == 0 {
		for _, a := range s.Addresses {
			addrs = append(addrs, a.Addr)
		}
	}
	sort.Strings(addrs)
	r.emit(line{OK: true, Addrs: addrs})
	return nil
}

func (r *recorder) ReportError(err error) { r.emit(line{OK: false, Error: err.Error()}) }

func (r *recorder) NewAddress([]resolver.Address) {}

func (r *recorder) ParseServiceConfig(string) *serviceconfig.ParseResult {
	return &serviceconfig.ParseResult{}
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: subscriber TARGET")
		os.Exit(2)
	}
	endpoints := os.Getenv("GNAMING_TEST_ETCD_ENDPOINTS")
	cluster := gnaming.Cluster{Endpoints: strings.Split(endpoints, ","), DialTimeout: time.Second, RequestTimeout: time.Second}
	if err := gnaming.RegisterCluster("", cluster); err != nil {
		fmt.Fprintln(os.Stderr, "RegisterCluster:", err)
		os.Exit(1)
	}
	u, err := url.Parse(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "target:", err)
		os.Exit(2)
	}
	rec := &recorder{out: bufio.NewWriter(os.Stdout)}
	r, err := gnaming.NewBuilder(u.Scheme).Build(resolver.Target{URL: *u}, rec, resolver.BuildOptions{})
	if err != nil {
		fmt.Fprintln(os.Stderr, "Build:", err)
		os.Exit(1)
	}
	io.Copy(io.Discard, os.Stdin)
	r.Close()
}
