// Package service serves a training run over HTTP: Prometheus metrics, health and
// readiness, a JSON status, the newest sample grid, a live page for people, and the
// control API (checkpoint now, stop). It reads what the run reports through a
// Monitor (the run's trainer.Observer) and asks the run to act through a channel of
// trainer.Commands, served between steps: no request touches the backend or waits
// for a step, and a failing handler cannot stop training.
package service

import (
	"context"
	"crypto/subtle"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/time/rate"

	"github.com/gantrain/gantrain/trainer"
)

//go:embed page.html
var page []byte

// Limits of the HTTP server. Control replies wait for a checkpoint to be written,
// which on the paper's nets takes well under a second; commandWait bounds the wait
// below the write timeout.
const (
	readHeaderTimeout = 5 * time.Second
	readTimeout       = 10 * time.Second
	writeTimeout      = 60 * time.Second
	idleTimeout       = 120 * time.Second
	maxHeaderBytes    = 16 << 10
	maxBodyBytes      = 4 << 10
	commandWait       = 50 * time.Second
)

// Options configure a Server.
type Options struct {
	// Addr is the listen address, host:port (port 0 picks a free one).
	Addr string
	// Token is the bearer token that control requests must carry. Empty turns the
	// control API off (its endpoints answer 403).
	Token string
	// Commands carries control requests to the run; nil turns control off too.
	Commands chan<- trainer.Command
	Log      *slog.Logger
	// RateLimit caps the requests per second the server handles (bursts of
	// RateBurst), so that a flood of scrapes cannot take the CPU from training:
	// requests over the rate wait their turn, those over maxWaiting are refused with
	// 503. The probes /healthz and /readyz are never held. 0: no limit.
	RateLimit float64
	RateBurst int
	// MetricsTTL lets one gathering of the metrics serve the scrapes of that long
	// (0: gather for every scrape).
	MetricsTTL time.Duration
}

// Server is the HTTP service of one run.
type Server struct {
	mon     *Monitor
	metrics prometheus.Gatherer
	opt     Options
	srv     *http.Server
	ln      net.Listener
	done    chan error
	limiter *rate.Limiter // the status page, the API and the sample grid
	waiting atomic.Int64
	// Scrapes of /metrics have a budget of their own, so that a flood of other
	// requests cannot push a scrape past Prometheus's timeout (the probes have none).
	scrapeLimiter *rate.Limiter
	scrapeWaiting atomic.Int64
	// Failed control authentication is logged, at most authLogBurst lines at once
	// and one per authLogEvery after that, each saying how many it stands for.
	authLog   *rate.Limiter
	authQuiet atomic.Int64
}

const (
	authLogEvery = 10 * time.Second
	authLogBurst = 3
)

// maxWaiting bounds the requests queued behind the rate limit.
const maxWaiting = 256

// New returns a server for mon whose /metrics serves what metrics gathers (the
// registry mon's Metrics are registered with); Start makes it listen.
func New(mon *Monitor, metrics prometheus.Gatherer, opt Options) *Server {
	if opt.Log == nil {
		opt.Log = slog.New(slog.DiscardHandler)
	}
	s := &Server{mon: mon, metrics: metrics, opt: opt, authLog: rate.NewLimiter(rate.Every(authLogEvery), authLogBurst)}
	if opt.RateLimit > 0 {
		s.limiter = rate.NewLimiter(rate.Limit(opt.RateLimit), max(opt.RateBurst, 1))
		s.scrapeLimiter = rate.NewLimiter(rate.Limit(opt.RateLimit), max(opt.RateBurst, 1))
	}
	s.srv = &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(opt.Log.Handler(), slog.LevelWarn),
	}
	return s
}

// Start listens on the configured address and serves in the background.
func (s *Server) Start() error {
	ln, err := net.Listen("tcp", s.opt.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", s.opt.Addr, err)
	}
	s.ln = ln
	s.done = make(chan error, 1)
	go func() {
		err := s.srv.Serve(ln)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		s.done <- err
	}()
	return nil
}

// Addr is the address the server listens on (after Start).
func (s *Server) Addr() string {
	if s.ln == nil {
		return s.opt.Addr
	}
	return s.ln.Addr().String()
}

// Shutdown stops accepting requests and waits (until ctx ends) for those in flight.
func (s *Server) Shutdown(ctx context.Context) error {
	if s.ln == nil {
		return nil
	}
	err := s.srv.Shutdown(ctx)
	if serr := <-s.done; err == nil {
		err = serr
	}
	return err
}

// Handler returns the service's routes.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	gather := s.metrics
	if s.opt.MetricsTTL > 0 {
		gather = &cachedGatherer{g: gather, ttl: s.opt.MetricsTTL, now: time.Now}
	}
	metrics := promhttp.HandlerFor(gather, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(s.opt.Log.Handler(), slog.LevelWarn)})
	mux.Handle("GET /metrics", metrics)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("GET /readyz", s.readyz)
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, http.StatusOK, s.mon.Status()) })
	mux.HandleFunc("GET /v1/history", s.history)
	mux.HandleFunc("GET /samples/latest.png", s.latestPNG)
	mux.HandleFunc("POST /v1/checkpoint", func(w http.ResponseWriter, r *http.Request) { s.control(w, r, "checkpoint", trainer.CheckpointNow) })
	mux.HandleFunc("POST /v1/stop", func(w http.ResponseWriter, r *http.Request) { s.control(w, r, "stop", trainer.StopNow) })
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Type", "text/html; charset=utf-8")
		h.Set("Cache-Control", "no-cache")
		// The page uses only its own inline script and style and this origin.
		h.Set("Content-Security-Policy", "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src 'self'")
		h.Set("X-Content-Type-Options", "nosniff")
		w.Write(page)
	})
	return s.throttle(mux)
}

// throttle holds requests to the configured rate: /metrics in a budget of its own,
// everything else but the probes in another.
func (s *Server) throttle(next http.Handler) http.Handler {
	if s.limiter == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		lim, waiting := s.limiter, &s.waiting
		switch r.URL.Path {
		case "/healthz", "/readyz":
			next.ServeHTTP(w, r)
			return
		case "/metrics":
			lim, waiting = s.scrapeLimiter, &s.scrapeWaiting
		}
		if waiting.Add(1) > maxWaiting {
			waiting.Add(-1)
			w.Header().Set("Retry-After", "1")
			httpError(w, http.StatusServiceUnavailable, "too many requests waiting; retry in a second")
			return
		}
		err := lim.Wait(r.Context())
		waiting.Add(-1)
		if err != nil {
			return // the client went away while it waited
		}
		next.ServeHTTP(w, r)
	})
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ok, state, msg := s.mon.Ready()
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if ok {
		io.WriteString(w, "ready: training\n")
		return
	}
	w.WriteHeader(http.StatusServiceUnavailable)
	if msg != "" {
		fmt.Fprintf(w, "not ready: %s: %s\n", state, msg)
		return
	}
	fmt.Fprintf(w, "not ready: %s\n", state)
}

// history is the loss history as parallel arrays (compact for long runs).
func (s *Server) history(w http.ResponseWriter, r *http.Request) {
	pts := s.mon.History()
	h := struct {
		Step  []int64   `json:"step"`
		Epoch []float64 `json:"epoch"`
		DLoss []float64 `json:"d_loss"`
		GLoss []float64 `json:"g_loss"`
		DReal []float64 `json:"d_real"`
		DFake []float64 `json:"d_fake"`
	}{make([]int64, 0, len(pts)), make([]float64, 0, len(pts)), make([]float64, 0, len(pts)),
		make([]float64, 0, len(pts)), make([]float64, 0, len(pts)), make([]float64, 0, len(pts))}
	for _, p := range pts {
		h.Step, h.Epoch = append(h.Step, p.Step), append(h.Epoch, p.Epoch)
		h.DLoss, h.GLoss = append(h.DLoss, p.DLoss), append(h.GLoss, p.GLoss)
		h.DReal, h.DFake = append(h.DReal, p.DReal), append(h.DFake, p.DFake)
	}
	writeJSON(w, http.StatusOK, h)
}

func (s *Server) latestPNG(w http.ResponseWriter, r *http.Request) {
	png, step := s.mon.SamplePNG()
	if png == nil {
		httpError(w, http.StatusNotFound, "no sample grid yet: the first is written when the run starts")
		return
	}
	h := w.Header()
	h.Set("Content-Type", "image/png")
	h.Set("Cache-Control", "no-cache")
	h.Set("ETag", strconv.Quote("step-"+strconv.FormatInt(step, 10)))
	h.Set("X-Gantrain-Step", strconv.FormatInt(step, 10))
	if match := r.Header.Get("If-None-Match"); match != "" && match == h.Get("ETag") {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	h.Set("Content-Length", strconv.Itoa(len(png)))
	w.Write(png)
}

// control authorises a control request and hands the command to the run.
func (s *Server) control(w http.ResponseWriter, r *http.Request, action string, kind trainer.CommandKind) {
	code := s.controlCode(w, r, action, kind)
	s.mon.controlRequest(action, code)
}

func (s *Server) controlCode(w http.ResponseWriter, r *http.Request, action string, kind trainer.CommandKind) int {
	if s.opt.Token == "" || s.opt.Commands == nil {
		return httpError(w, http.StatusForbidden, "the control API is off: start gantrain with --control-token-file or GANTRAIN_CONTROL_TOKEN to enable it")
	}
	if !s.authorized(r) {
		s.authFailed(r, action)
		w.Header().Set("WWW-Authenticate", `Bearer realm="gantrain"`)
		return httpError(w, http.StatusUnauthorized, "missing or wrong bearer token")
	}
	// The endpoints take no body; a large one is refused before it is read whole.
	if _, err := io.Copy(io.Discard, http.MaxBytesReader(w, r.Body, maxBodyBytes)); err != nil {
		return httpError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body over %d bytes", maxBodyBytes))
	}
	if ok, state, _ := s.mon.Ready(); !ok {
		return httpError(w, http.StatusConflict, "the run is not training (state "+state+")")
	}
	reply := make(chan trainer.CommandResult, 1)
	select {
	case s.opt.Commands <- trainer.Command{Kind: kind, Reply: reply}:
	default:
		return httpError(w, http.StatusTooManyRequests, "another control request is pending; retry after it")
	}
	s.opt.Log.Info("control request", "action", action, "remote", r.RemoteAddr)
	timer := time.NewTimer(commandWait)
	defer timer.Stop()
	select {
	case res := <-reply:
		if res.Err != nil {
			return httpError(w, http.StatusInternalServerError, fmt.Sprintf("%s at step %d failed: %v", action, res.Step, res.Err))
		}
		writeJSON(w, http.StatusOK, map[string]any{"action": action, "step": res.Step, "checkpoint": res.Path})
		return http.StatusOK
	case <-timer.C:
		writeJSON(w, http.StatusAccepted, map[string]any{"action": action, "status": "accepted; still running"})
		return http.StatusAccepted
	case <-r.Context().Done():
		return 499 // client gone; the command still runs
	}
}

// authFailed logs a control request refused for its token (rate-limited: a flood of
// them must not flood the log too); the counter gantrain_control_requests_total has
// them all.
func (s *Server) authFailed(r *http.Request, action string) {
	if !s.authLog.Allow() {
		s.authQuiet.Add(1)
		return
	}
	s.opt.Log.Warn("control request refused: missing or wrong bearer token", "action", action, "remote", r.RemoteAddr,
		"refused_unlogged_since", s.authQuiet.Swap(0))
}

func (s *Server) authorized(r *http.Request) bool {
	h := r.Header.Get("Authorization")
	const prefix = "Bearer "
	if len(h) < len(prefix) || !strings.EqualFold(h[:len(prefix)], prefix) {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(strings.TrimSpace(h[len(prefix):])), []byte(s.opt.Token)) == 1
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	raw, err := json.Marshal(v)
	if err != nil {
		httpError(w, http.StatusInternalServerError, "encode: "+err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	w.Write(append(raw, '\n'))
}

func httpError(w http.ResponseWriter, code int, msg string) int {
	raw, _ := json.Marshal(map[string]string{"error": msg})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	w.Write(append(raw, '\n'))
	return code
}
