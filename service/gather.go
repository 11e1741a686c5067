package service

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// cachedGatherer serves the same gathered metrics for ttl. Gathering (the Go
// runtime's metrics, /proc for the process collector) is most of a scrape's cost;
// with the cache, scrapes arriving faster than ttl cost only their encoding, so a
// flood of them cannot take the CPU from training. Prometheus scrapes far less often.
type cachedGatherer struct {
	g   prometheus.Gatherer
	ttl time.Duration
	now func() time.Time

	mu  sync.Mutex
	at  time.Time
	mfs []*dto.MetricFamily
	err error
}

// Gather implements prometheus.Gatherer. The families it returns are shared between
// callers, who only read them (promhttp encodes them).
func (c *cachedGatherer) Gather() ([]*dto.MetricFamily, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if now := c.now(); c.mfs == nil || now.Sub(c.at) >= c.ttl {
		c.mfs, c.err = c.g.Gather()
		c.at = now
	}
	return c.mfs, c.err
}
