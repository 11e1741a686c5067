package checkpoint

import (
	"errors"
	"fmt"
	"io"
	"math"
	"os"

	"github.com/gantrain/gantrain/internal/atomicfile"
)

// ReadFile reads and decodes the checkpoint at path, as DecodeBytes does. It stats the
// file first and reads exactly its size, so memory is bounded by the file's actual
// size whatever its header claims. Decoding errors wrap ErrCorrupt, ErrChecksum or
// ErrNoChecksum and name the file; errors opening it wrap the *fs.PathError.
func ReadFile(path string, opt DecodeOptions) (*File, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	defer fh.Close()
	st, err := fh.Stat()
	if err != nil {
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("checkpoint: read %s: not a regular file", path)
	}
	size := st.Size()
	if size > math.MaxInt {
		return nil, fmt.Errorf("checkpoint: read %s: %d bytes is too large for this platform", path, size)
	}
	b := make([]byte, size)
	if _, err := io.ReadFull(fh, b); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("checkpoint: read %s: %w: file shrank to fewer than %d bytes while being read", path, ErrCorrupt, size)
		}
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	var one [1]byte
	if n, _ := fh.Read(one[:]); n > 0 {
		return nil, fmt.Errorf("checkpoint: read %s: %w: file grew beyond %d bytes while being read", path, ErrCorrupt, size)
	}
	f, err := DecodeBytes(b, opt)
	if err != nil {
		return nil, fmt.Errorf("checkpoint: read %s: %w", path, err)
	}
	return f, nil
}

// WriteFile encodes f, as Encode does, and writes it to path crash-safely: it writes
// a temporary file in the same directory (named "." + the base name + a random part +
// ".tmp"), syncs it to stable storage, renames it over path and syncs the directory.
// After it returns nil, a crash at any moment leaves either the old or the new
// complete file at path, never a partial one; on error, path is unchanged and the
// temporary file is removed.
//
// The new file keeps the permission bits of the file it replaces, or gets 0644.
func WriteFile(path string, f *File) error {
	if err := atomicfile.Write(path, func(w io.Writer) error { return Encode(w, f) }); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	return nil
}
