package output

import (
	"fmt"
	"io"
	"math"
	"strings"
	"time"
)

// Progress draws a one-line progress bar on a terminal. Its methods do nothing when
// it is off; Estimate works either way.
type Progress struct {
	w         io.Writer
	on        bool
	total     int64
	start     time.Time
	startStep int64
	line      string
}

// NewProgress starts a progress bar on w (nil: none is drawn) for a run that is at
// step startStep now and ends at step total (0: unbounded).
func NewProgress(w io.Writer, total, startStep int64) *Progress {
	return &Progress{w: w, on: w != nil, total: total, start: time.Now(), startStep: startStep}
}

// On reports whether the bar is drawn.
func (p *Progress) On() bool { return p.on }

// Total is the run's length in steps (0: unbounded).
func (p *Progress) Total() int64 { return p.total }

// Elapsed is the time since the bar started.
func (p *Progress) Elapsed() time.Duration { return time.Since(p.start) }

// Estimate returns how far a bounded run is at step (per cent of its steps) and the
// time left at the rate since this process started; ok is false for an unbounded run
// or before any step was timed.
func (p *Progress) Estimate(step int64) (pct float64, eta time.Duration, ok bool) {
	done := step - p.startStep
	if p.total <= 0 || done <= 0 {
		return 0, 0, false
	}
	pct = 100 * math.Min(float64(step)/float64(p.total), 1)
	perStep := time.Since(p.start) / time.Duration(done)
	eta = (time.Duration(max(p.total-step, 0)) * perStep).Round(time.Second)
	return pct, eta, true
}

// Update redraws the bar with the figures of st (its time and rate unused).
func (p *Progress) Update(st StepRecord) {
	if !p.on {
		return
	}
	elapsed := time.Since(p.start).Seconds()
	rate := float64(st.Step-p.startStep) / math.Max(elapsed, 1e-9)
	var b strings.Builder
	if p.total > 0 {
		frac := math.Min(float64(st.Step)/float64(p.total), 1)
		const width = 24
		full := int(frac * width)
		fmt.Fprintf(&b, "%d/%d [%s%s] %5.1f%% ", st.Step, p.total, strings.Repeat("=", full), strings.Repeat(" ", width-full), 100*frac)
		if rate > 0 {
			eta := time.Duration(float64(p.total-st.Step) / rate * float64(time.Second))
			fmt.Fprintf(&b, "ETA %s ", eta.Round(time.Second))
		}
	} else {
		fmt.Fprintf(&b, "step %d ", st.Step)
	}
	fmt.Fprintf(&b, "| epoch %.2f | D %.3f G %.3f | D(x) %.2f D(G(z)) %.2f | %.1f it/s", st.Epoch, st.DLoss, st.GLoss, st.DReal, st.DFake, rate)
	p.line = b.String()
	p.Draw()
}

// Draw draws the bar again, after a log line cleared it.
func (p *Progress) Draw() {
	if p.on && p.line != "" {
		fmt.Fprintf(p.w, "\r\x1b[K%s", p.line)
	}
}

// Clear removes the bar from the line, before something else is written there.
func (p *Progress) Clear() {
	if p.on && p.line != "" {
		fmt.Fprint(p.w, "\r\x1b[K")
	}
}
