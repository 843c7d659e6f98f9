package hbload

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
	scrapeTimeout  = 5 * time.Second
	maxMetricsBody = 32 << 20

	metricCPU      = "process_cpu_seconds_total"
	metricRSS      = "process_resident_memory_bytes"
	metricIsLeader = "metasrv_is_leader"
)

// Scraper reads the leader's process figures from its Prometheus endpoint
// (GET /metrics on the node's HTTP admin address).
type Scraper struct {
	URL string
	// HTTP is the client; nil means one with a 5 s timeout.
	HTTP *http.Client
}

// sample is one scrape: the process counters, and metasrv_is_leader when
// the node exports it (GreptimeDB's own metasrv does not).
type sample struct {
	cpu       float64
	rss       float64
	hasRSS    bool
	isLeader  float64
	hasLeader bool
}

func (s *Scraper) client() *http.Client {
	if s.HTTP != nil {
		return s.HTTP
	}
	return &http.Client{Timeout: scrapeTimeout}
}

// scrape GETs the URL once.
func (s *Scraper) scrape(ctx context.Context) (sample, error) {
	ctx, cancel := context.WithTimeout(ctx, scrapeTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.URL, nil)
	if err != nil {
		return sample{}, fmt.Errorf("GET %s: %w", s.URL, err)
	}
	req.Header.Set("Accept", "text/plain; version=0.0.4")
	resp, err := s.client().Do(req)
	if err != nil {
		return sample{}, err // names the method and URL
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
		return sample{}, fmt.Errorf("GET %s: %s", s.URL, resp.Status)
	}
	sm, err := parseSample(io.LimitReader(resp.Body, maxMetricsBody))
	if err != nil {
		return sample{}, fmt.Errorf("GET %s: %w", s.URL, err)
	}
	return sm, nil
}

// parseSample reads the three metrics, unlabelled, from a Prometheus text
// body.
func parseSample(r io.Reader) (sample, error) {
	var (
		sm     sample
		hasCPU bool
	)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 || strings.HasPrefix(fields[0], "#") {
			continue
		}
		var dst *float64
		switch fields[0] {
		case metricCPU:
			dst, hasCPU = &sm.cpu, true
		case metricRSS:
			dst, sm.hasRSS = &sm.rss, true
		case metricIsLeader:
			dst, sm.hasLeader = &sm.isLeader, true
		default:
			continue
		}
		v, err := strconv.ParseFloat(fields[1], 64)
		if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
			return sample{}, fmt.Errorf("malformed sample %q", sc.Text())
		}
		*dst = v
	}
	if err := sc.Err(); err != nil {
		return sample{}, fmt.Errorf("read the body: %w", err)
	}
	if !hasCPU {
		return sample{}, errors.New("no " + metricCPU + " in it: not a metasrv /metrics, or the process collector is not supported on this OS")
	}
	return sm, nil
}
