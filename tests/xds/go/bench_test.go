// Registration put → first RPC answered by the new backend through the agent and grpc-go's xDS client,
// and the connections that costs the backend that did not change.
package xdsgo

// Run it under the harness (the Makefile's bench-xds-go does):
//   python3 tests/harness/etcd_cluster.py run -- bash -c \
//     'cd tests/xds/go && go test -run "^$" -bench RegistrationToFirstRPC -benchtime 30x'
// Each iteration is one sample; the percentiles are reported as p50-ms, p90-ms and p99-ms, and the
// connections the unchanged backend accepted per change as unchanged-conns/change. With
// XDS_GO_BENCH_JSON=FILE the same figures are also written to FILE as one JSON object for scripts
// (go test runs a benchmark once with b.N = 1 before the 30 samples; the file holds the last run).

import (
	"encoding/json"
	"math"
	"os"
	"slices"
	"testing"
	"time"
)

func BenchmarkRegistrationToFirstRPC(b *testing.B) {
	useHarnessEtcd(b)
	svc := serviceName(b)
	unchanged := startGreeter(b)
	register(b, svc, unchanged.Addr, nil, 0)
	client := dialXDS(b, svc)
	waitAnswering(b, client, followTimeout, unchanged.Addr)

	// samples: put → first RPC answered by the new backend; puts: the part spent in Register (the etcd
	// put and its confirmation), so that what the agent and the client add can be told apart.
	samples := make([]time.Duration, 0, b.N)
	puts := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		fresh := startGreeter(b)
		b.StartTimer()
		put := time.Now()
		reg := register(b, svc, fresh.Addr, nil, 0)
		puts = append(puts, time.Since(put))
		for {
			who, err := answeredBy(client)
			if err != nil {
				b.Fatalf("RPC failed while %s was being added: %v", fresh.Addr, err)
			}
			if who == fresh.Addr {
				break
			}
			if time.Since(put) > followTimeout {
				b.Fatalf("%s registered but not answering through xDS after %v", fresh.Addr, followTimeout)
			}
		}
		samples = append(samples, time.Since(put))
		b.StopTimer()
		if err := reg.Close(); err != nil {
			b.Fatalf("deregistering %s: %v", fresh.Addr, err)
		}
		waitAnswering(b, client, followTimeout, unchanged.Addr)
		fresh.srv.Stop()
		b.StartTimer()
	}
	b.StopTimer()

	slices.Sort(samples)
	slices.Sort(puts)
	ms := func(q float64) float64 { return quantileMs(samples, q) }
	changes := 2 * b.N
	extraConns := len(unchanged.connections()) - 1
	b.ReportMetric(ms(0.50), "p50-ms")
	b.ReportMetric(ms(0.90), "p90-ms")
	b.ReportMetric(ms(0.99), "p99-ms")
	b.ReportMetric(quantileMs(puts, 0.50), "put-p50-ms")
	b.ReportMetric(float64(extraConns)/float64(changes), "unchanged-conns/change")
	out := os.Getenv("XDS_GO_BENCH_JSON")
	if out == "" {
		return
	}
	js, _ := json.Marshal(map[string]any{
		"stack": "grpc-go xds", "samples": len(samples),
		"p50_ms": ms(0.50), "p90_ms": ms(0.90), "p99_ms": ms(0.99),
		"put_p50_ms": quantileMs(puts, 0.50), "changes": changes, "new_conns_to_unchanged": extraConns,
	})
	if err := os.WriteFile(out, append(js, '\n'), 0o644); err != nil {
		b.Fatalf("writing %s: %v", out, err)
	}
}

// quantileMs is the q-quantile (nearest rank) of sorted durations, in milliseconds.
func quantileMs(sorted []time.Duration, q float64) float64 {
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return float64(sorted[max(i, 0)].Microseconds()) / 1000
}
