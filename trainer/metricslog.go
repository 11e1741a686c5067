package trainer

import (
	"bytes"
	"fmt"
	"io"
	"os"
)

// outputFile is what metricsLog writes to: an *os.File opened for appending, or a
// test's stand-in.
type outputFile interface {
	io.Writer
	Truncate(size int64) error
	Close() error
}

// maxPendingMetrics bounds the records kept in memory while metrics.jsonl cannot be
// written (about 50,000 records); beyond it the oldest are dropped, and said so.
const maxPendingMetrics = 8 << 20

// metricsLog appends records to metrics.jsonl so that the file only ever holds whole
// lines. A write that fails (a full disk) is cut back to the last whole record; its
// records stay in memory and are written again, before newer ones, with the next
// record, so that a run that outlives a full disk loses no record.
type metricsLog struct {
	f       outputFile
	size    int64  // bytes of whole records in the file
	pending []byte // whole records not in the file yet, oldest first
	torn    bool   // a failed write left bytes past size that could not be cut yet
	dropped int    // records dropped for maxPendingMetrics
}

// openMetricsLog opens metrics.jsonl at path for appending, first dropping records
// past step (a resumed run writes them again) and a torn last line; open opens the
// file (os.OpenFile, or a test's).
func openMetricsLog(path string, step int64, open func(string) (outputFile, int64, error)) (*metricsLog, error) {
	if err := truncateMetrics(path, step); err != nil {
		return nil, err
	}
	f, size, err := open(path)
	if err != nil {
		return nil, fmt.Errorf("metrics log: %w", err)
	}
	return &metricsLog{f: f, size: size}, nil
}

func openAppend(path string) (outputFile, int64, error) {
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

// write appends rec (one JSON line with its newline) after the pending records. On
// an error nothing but whole records is left in the file, and the records wait.
func (m *metricsLog) write(rec []byte) error {
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
func (m *metricsLog) Close() error {
	var err error
	if len(m.pending) > 0 {
		err = m.write(nil)
	}
	if cerr := m.f.Close(); err == nil {
		err = cerr
	}
	return err
}
