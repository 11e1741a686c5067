package output

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	"github.com/gantrain/gantrain/internal/atomicfile"
)

// AppendFile is what a MetricsLog writes to: an *os.File opened for appending, or a
// test's stand-in.
type AppendFile interface {
	io.Writer
	Truncate(size int64) error
	Close() error
}

// OpenFunc opens a file for appending and returns its size.
type OpenFunc func(path string) (AppendFile, int64, error)

// maxPendingMetrics bounds the records kept in memory while metrics.jsonl cannot be
// written (about 50,000 records); beyond it the oldest are dropped, and said so.
const maxPendingMetrics = 8 << 20

// MetricsLog appends records to metrics.jsonl so that the file only ever holds whole
// lines. A write that fails (a full disk) is cut back to the last whole record; its
// records stay in memory and are written again, before newer ones, with the next
// record, so that a run that outlives a full disk loses no record.
type MetricsLog struct {
	f       AppendFile
	size    int64  // bytes of whole records in the file
	pending []byte // whole records not in the file yet, oldest first
	torn    bool   // a failed write left bytes past size that could not be cut yet
	dropped int    // records dropped for maxPendingMetrics
}

// OpenMetricsLog opens the metrics log at path for appending, first dropping records
// past step (a resumed run writes them again) and a torn last line; open opens the
// file (OpenAppend when nil).
func OpenMetricsLog(path string, step int64, open OpenFunc) (*MetricsLog, error) {
	if open == nil {
		open = OpenAppend
	}
	if err := truncateMetrics(path, step); err != nil {
		return nil, err
	}
	f, size, err := open(path)
	if err != nil {
		return nil, fmt.Errorf("metrics log: %w", err)
	}
	return &MetricsLog{f: f, size: size}, nil
}

// OpenAppend opens path for appending, creating it if need be, and returns its size.
func OpenAppend(path string) (AppendFile, int64, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, 0, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	return f, fi.Size(), nil
}

// Write appends rec (a StepRecord or an EvalRecord) as one line. On an error nothing
// but whole records is left in the file, and the records wait for the next Write.
func (m *MetricsLog) Write(rec any) error {
	line, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("metrics log: %w", err)
	}
	return m.write(append(line, '\n'))
}

// write appends rec (one JSON line with its newline) after the pending records.
func (m *MetricsLog) write(rec []byte) error {
	m.pending = append(m.pending, rec...)
	if over := len(m.pending) - maxPendingMetrics; over > 0 {
		cut := bytes.IndexByte(m.pending[over:], '\n') + over + 1
		m.dropped += bytes.Count(m.pending[:cut], []byte("\n"))
		m.pending = m.pending[cut:]
	}
	if m.torn {
		if err := m.f.Truncate(m.size); err != nil {
			return fmt.Errorf("metrics log: cut a partial record: %w", err)
		}
		m.torn = false
	}
	n, err := m.f.Write(m.pending)
	if err != nil {
		if n > 0 {
			if terr := m.f.Truncate(m.size); terr != nil {
				m.torn = true
			}
		}
		return fmt.Errorf("metrics log: %w (%d records wait to be written)", err, bytes.Count(m.pending, []byte("\n")))
	}
	m.size += int64(n)
	m.pending = m.pending[:0]
	return nil
}

// Close writes what waits, once more, and closes the file.
func (m *MetricsLog) Close() error {
	var err error
	if len(m.pending) > 0 {
		err = m.write(nil)
	}
	if cerr := m.f.Close(); err == nil {
		err = cerr
	}
	return err
}

// truncateMetrics drops the records of metrics.jsonl past step: a run resumed from
// a checkpoint repeats those steps and writes them again.
func truncateMetrics(path string, step int64) error {
	raw, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("metrics log: %w", err)
	}
	var keep []byte
	cut := false
	for _, line := range bytes.SplitAfter(raw, []byte("\n")) {
		var rec struct {
			Step *int64 `json:"step"`
		}
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		// A torn last line (a crash mid-write) or a record past step goes.
		if json.Unmarshal(line, &rec) != nil || rec.Step == nil || *rec.Step > step || line[len(line)-1] != '\n' {
			cut = true
			continue
		}
		keep = append(keep, line...)
	}
	if !cut {
		return nil
	}
	if err := atomicfile.Write(path, func(w io.Writer) error {
		_, err := w.Write(keep)
		return err
	}); err != nil {
		return fmt.Errorf("metrics log: %w", err)
	}
	return nil
}
