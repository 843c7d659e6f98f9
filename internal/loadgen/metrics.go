package loadgen

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

const (
	// scrapeTimeout bounds one GET of /metrics.
	scrapeTimeout = 5 * time.Second
	// maxMetricsBody caps the /metrics body read.
	maxMetricsBody = 32 << 20

	metricGRPCRequests = "metasrv_grpc_requests_total"
)

// MetricProcessCPU is the node's CPU counter, in every scrape.
const MetricProcessCPU = "process_cpu_seconds_total"

// Scraper reads a metasrv node's CPU counter from its Prometheus endpoint
// (GET /metrics on the node's HTTP admin address).
type Scraper struct {
	// URL is the /metrics URL.
	URL string
	// Hint is appended to scrape errors, e.g. how URL was chosen.
	Hint string
	// HTTP is the client; nil means one with a scrapeTimeout timeout.
	HTTP *http.Client
}

// ServerCPU is the CPU time the scraped node spent during one target's run:
// process_cpu_seconds_total read before and after it. It is absent from
// results whose target is not a metasrv node (raw-pg).
type ServerCPU struct {
	// Source is the /metrics URL scraped.
	Source string `json:"source"`
	// Measured says the figures below are valid; Error says why not.
	Measured bool   `json:"measured"`
	Error    string `json:"error,omitempty"`
	// Seconds is the node's CPU time (user + system) during the run.
	Seconds float64 `json:"seconds,omitempty"`
	// SecondsPer1kOps is Seconds per 1,000 successful operations.
	SecondsPer1kOps float64 `json:"seconds_per_1k_ops,omitempty"`
	// Cores is Seconds over the run's elapsed time: the cores kept busy.
	Cores float64 `json:"cores,omitempty"`
	// GRPCCalls is how many gRPC calls the node counted during the run
	// (metasrv_grpc_requests_total), when it exports the counter.
	GRPCCalls *uint64 `json:"grpc_calls,omitempty"`
	// Warning flags a figure that may not mean what it seems.
	Warning string `json:"warning,omitempty"`
}

// metricsSample is what one scrape yields for bench kv.
type metricsSample struct {
	cpu       float64
	grpcCalls float64
	hasGRPC   bool
}

func (s *Scraper) client() *http.Client {
	if s.HTTP != nil {
		return s.HTTP
	}
	return &http.Client{Timeout: scrapeTimeout}
}

func (s *Scraper) fail(err error) error {
	if s.Hint == "" {
		return err
	}
	return fmt.Errorf("%w (%s)", err, s.Hint)
}

// scrape reads the counters bench kv needs.
func (s *Scraper) scrape(ctx context.Context) (metricsSample, error) {
	m, err := s.Scrape(ctx, metricGRPCRequests)
	if err != nil {
		return metricsSample{}, err
	}
	calls, hasGRPC := m[metricGRPCRequests]
	return metricsSample{cpu: m[MetricProcessCPU], grpcCalls: calls, hasGRPC: hasGRPC}, nil
}

// Metrics is one scrape: each metric asked for that the body holds, its
// samples summed over their labels.
type Metrics map[string]float64

// Scrape GETs the URL once and reads MetricProcessCPU (which must be there:
// without it the URL is not a node's /metrics) and the other names.
func (s *Scraper) Scrape(ctx context.Context, names ...string) (Metrics, error) {
	ctx, cancel := context.WithTimeout(ctx, scrapeTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.URL, nil)
	if err != nil {
		return nil, s.fail(fmt.Errorf("GET %s: %w", s.URL, err))
	}
	// The classic text format; OpenMetrics would parse the same here.
	req.Header.Set("Accept", "text/plain; version=0.0.4")
	resp, err := s.client().Do(req)
	if err != nil {
		return nil, s.fail(err) // names the method and URL
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
		return nil, s.fail(fmt.Errorf("GET %s: %s", s.URL, resp.Status))
	}
	m, err := ParseMetrics(io.LimitReader(resp.Body, maxMetricsBody), names...)
	if err != nil {
		return nil, s.fail(fmt.Errorf("GET %s: %w", s.URL, err))
	}
	return m, nil
}

// ParseMetrics reads MetricProcessCPU and names from a Prometheus text (or
// OpenMetrics) body, each summed over its label sets.
func ParseMetrics(r io.Reader, names ...string) (Metrics, error) {
	want := map[string]bool{MetricProcessCPU: true}
	for _, n := range names {
		want[n] = true
	}
	m := Metrics{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		name, rest := line, ""
		if i := strings.IndexAny(line, "{ \t"); i >= 0 {
			name, rest = line[:i], line[i:]
		}
		if !want[name] {
			continue
		}
		if strings.HasPrefix(rest, "{") {
			end := strings.LastIndexByte(rest, '}')
			if end < 0 {
				return nil, fmt.Errorf("malformed sample %q", line)
			}
			rest = rest[end+1:]
		}
		fields := strings.Fields(rest)
		if len(fields) == 0 {
			return nil, fmt.Errorf("malformed sample %q", line)
		}
		v, err := strconv.ParseFloat(fields[0], 64)
		if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, fmt.Errorf("malformed sample %q", line)
		}
		m[name] += v
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read the body: %w", err)
	}
	if _, ok := m[MetricProcessCPU]; !ok {
		return nil, errors.New("no " + MetricProcessCPU + " in it: not a metasrv /metrics, or the process collector is not supported on this OS")
	}
	return m, nil
}

// measure runs one target's load between two scrapes of s (nil: no scrape)
// and attaches the CPU figures, or why there are none, to its result. A
// failed scrape never fails the run.
func measure(ctx context.Context, s *Scraper, run func() (Result, error)) (Result, error) {
	if s == nil {
		return run()
	}
	before, berr := s.scrape(ctx)
	res, err := run()
	if err != nil {
		return res, err
	}
	cpu := &ServerCPU{Source: s.URL}
	res.ServerCPU = cpu
	if berr != nil {
		cpu.Error = "before the run: " + berr.Error()
		return res, nil
	}
	after, aerr := s.scrape(ctx)
	if aerr != nil {
		cpu.Error = "after the run: " + aerr.Error()
		return res, nil
	}
	if after.cpu < before.cpu {
		cpu.Error = fmt.Sprintf("%s went down from %g to %g: the node restarted during the run", MetricProcessCPU, before.cpu, after.cpu)
		return res, nil
	}
	cpu.Measured = true
	cpu.Seconds = after.cpu - before.cpu
	if res.Ops > 0 {
		cpu.SecondsPer1kOps = cpu.Seconds / float64(res.Ops) * 1000
	}
	if res.Elapsed > 0 {
		cpu.Cores = cpu.Seconds / res.Elapsed.Seconds()
	}
	if after.hasGRPC && after.grpcCalls >= before.grpcCalls {
		calls := uint64(after.grpcCalls - before.grpcCalls)
		cpu.GRPCCalls = &calls
		// Every operation is at least one call on the node that serves it.
		if calls < res.Ops/2 {
			cpu.Warning = fmt.Sprintf("the scraped node handled %d gRPC calls during the run for %d operations: it is probably not the leader, whose CPU this is meant to be", calls, res.Ops)
		}
	}
	return res, nil
}
