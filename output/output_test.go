package output

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A resumed run drops the records past its step and a torn last line.
func TestOpenMetricsLogCutsBackToTheStep(t *testing.T) {
	const log = `{"step":10,"d_loss":1}
{"epoch":0.1,"eval":{"parzen_ll":1},"step":20}
{"step":30,"d_loss":1}
{"step":40,"d_lo`
	for _, tc := range []struct {
		name string
		step int64
		want string
	}{
		{"at the newest", 30, "{\"step\":10,\"d_loss\":1}\n{\"epoch\":0.1,\"eval\":{\"parzen_ll\":1},\"step\":20}\n{\"step\":30,\"d_loss\":1}\n"},
		{"between records", 25, "{\"step\":10,\"d_loss\":1}\n{\"epoch\":0.1,\"eval\":{\"parzen_ll\":1},\"step\":20}\n"},
		{"from the start", 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), MetricsFile)
			if err := os.WriteFile(path, []byte(log), 0o644); err != nil {
				t.Fatal(err)
			}
			m, err := OpenMetricsLog(path, tc.step, nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := m.Write(StepRecord{Step: tc.step + 1, Time: time.Unix(0, 0).UTC()}); err != nil {
				t.Fatal(err)
			}
			if err := m.Close(); err != nil {
				t.Fatal(err)
			}
			raw, _ := os.ReadFile(path)
			got, _ := strings.CutSuffix(string(raw), "\n")
			i := strings.LastIndexByte(got, '\n') + 1
			if got[:i] != tc.want || !strings.Contains(got[i:], `"step":`) {
				t.Errorf("metrics.jsonl:\n%s\nwant\n%s+ the new record", raw, tc.want)
			}
		})
	}
}

// failing is an AppendFile whose writes store half their bytes and fail while full is
// set.
type failing struct {
	bytes.Buffer
	full bool
}

func (f *failing) Write(p []byte) (int, error) {
	if f.full {
		n, _ := f.Buffer.Write(p[:len(p)/2])
		return n, errors.New("no space left on device")
	}
	return f.Buffer.Write(p)
}

func (f *failing) Truncate(size int64) error { f.Buffer.Truncate(int(size)); return nil }
func (f *failing) Close() error              { return nil }

// A failed write leaves only whole lines, and its records are written with the next.
func TestMetricsLogOutlivesAFailedWrite(t *testing.T) {
	f := &failing{}
	m, err := OpenMetricsLog(filepath.Join(t.TempDir(), MetricsFile), 0, func(string) (AppendFile, int64, error) { return f, 0, nil })
	if err != nil {
		t.Fatal(err)
	}
	at := time.Unix(0, 0).UTC()
	for _, tc := range []struct {
		step    int64
		full    bool
		wantErr bool
		lines   int
	}{
		{1, false, false, 1},
		{2, true, true, 1},
		{3, true, true, 1},
		{4, false, false, 4},
	} {
		f.full = tc.full
		err := m.Write(StepRecord{Step: tc.step, Time: at})
		if (err != nil) != tc.wantErr {
			t.Fatalf("step %d: Write = %v", tc.step, err)
		}
		if got := strings.Count(f.String(), "\n"); got != tc.lines || !strings.HasSuffix(f.String(), "\n") {
			t.Fatalf("after step %d the file holds %q; want %d whole lines", tc.step, f.String(), tc.lines)
		}
	}
}

func TestProgress(t *testing.T) {
	for _, tc := range []struct {
		name  string
		total int64
		rec   StepRecord
		want  string
	}{
		{"bounded", 100, StepRecord{Step: 50, Epoch: 0.5, DLoss: 1.25, GLoss: 0.75, DReal: 0.6, DFake: 0.4},
			"50/100 [============            ]  50.0% ETA "},
		{"unbounded", 0, StepRecord{Step: 50, Epoch: 0.5, DLoss: 1.25, GLoss: 0.75, DReal: 0.6, DFake: 0.4},
			"step 50 | epoch 0.50 | D 1.250 G 0.750 | D(x) 0.60 D(G(z)) 0.40 | "},
	} {
		var buf bytes.Buffer
		p := NewProgress(&buf, tc.total, 0)
		p.Update(tc.rec)
		if !strings.HasPrefix(buf.String(), "\r\x1b[K"+tc.want) {
			t.Errorf("%s: bar %q, want it to begin %q", tc.name, buf.String(), tc.want)
		}
		buf.Reset()
		p.Clear()
		if buf.String() != "\r\x1b[K" {
			t.Errorf("%s: Clear wrote %q", tc.name, buf.String())
		}
		if _, _, ok := p.Estimate(50); ok != (tc.total > 0) {
			t.Errorf("%s: Estimate ok = %v", tc.name, ok)
		}
	}
	p := NewProgress(nil, 100, 0) // no writer: nothing is drawn, nothing fails
	p.Update(StepRecord{Step: 1})
	p.Draw()
	p.Clear()
	if p.On() {
		t.Error("a bar without a writer is on")
	}
}
