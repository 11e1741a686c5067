package data

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Magic numbers of the idx files that MNIST ships in: two zero bytes, the
// element type (0x08, unsigned byte) and the number of dimensions.
const (
	idxImagesMagic = 0x00000803
	idxLabelsMagic = 0x00000801
)

// Limits on what an idx header may claim. The data is read incrementally, so
// memory only ever grows with the bytes actually present; these limits turn a
// nonsensical header into a clear error instead of a long read.
const (
	maxImagePixels = 1 << 24 // rows*cols (or H*W*C) of one image
	maxTotalValues = 1 << 30 // count*rows*cols of a whole file
	initialReadCap = 1 << 20 // first buffer size; doubled as data arrives
)

// byteToUnit maps a pixel byte to [0,1].
var byteToUnit = func() (t [256]float32) {
	for i := range t {
		t[i] = float32(i) / 255
	}
	return t
}()

// ReadIDXImages parses one idx3 image stream (already decompressed): the magic
// number 0x00000803, then the image count, rows and columns as big-endian
// uint32, then count*rows*cols pixel bytes. Pixels are scaled to [0,1] by /255.
// The Set has Name name, Dim rows*cols, Shape{rows, cols, 1} and no labels.
// name is used in errors. Bytes after the last image are not read.
func ReadIDXImages(r io.Reader, name string) (*Set, error) {
	var hdr [16]byte
	if err := readHeader(r, hdr[:], name); err != nil {
		return nil, err
	}
	if err := checkMagic(hdr[:4], idxImagesMagic, name); err != nil {
		return nil, err
	}
	count := binary.BigEndian.Uint32(hdr[4:])
	rows := binary.BigEndian.Uint32(hdr[8:])
	cols := binary.BigEndian.Uint32(hdr[12:])
	if rows == 0 || cols == 0 {
		return nil, fmt.Errorf("%s: implausible image size %d×%d", name, rows, cols)
	}
	dim := uint64(rows) * uint64(cols)
	if dim > maxImagePixels {
		return nil, fmt.Errorf("%s: implausible image size %d×%d (over %d pixels)", name, rows, cols, maxImagePixels)
	}
	total := uint64(count) * dim // at most 2^32 * 2^24, no overflow
	if total > maxTotalValues {
		return nil, fmt.Errorf("%s: implausible size: header says %d images of %d×%d (%d pixels, over the limit of %d)",
			name, count, rows, cols, total, maxTotalValues)
	}
	pix, err := readBytes(r, int(total))
	if err != nil {
		if isTruncation(err) {
			return nil, fmt.Errorf("%s: truncated: header says %d images of %d×%d, found only %d of %d bytes of pixel data: %w",
				name, count, rows, cols, len(pix), total, io.ErrUnexpectedEOF)
		}
		return nil, fmt.Errorf("%s: reading pixel data after %d bytes: %w", name, len(pix), err)
	}
	x := make([]float32, len(pix))
	for i, b := range pix {
		x[i] = byteToUnit[b]
	}
	return &Set{
		Name:  name,
		X:     x,
		N:     int(count),
		Dim:   int(dim),
		Shape: Shape{H: int(rows), W: int(cols), C: 1},
	}, nil
}

// ReadIDXLabels parses one idx1 label stream (already decompressed): the magic
// number 0x00000801, the label count as a big-endian uint32, then one byte per
// label. name is used in errors. Bytes after the last label are not read.
func ReadIDXLabels(r io.Reader, name string) ([]uint8, error) {
	var hdr [8]byte
	if err := readHeader(r, hdr[:], name); err != nil {
		return nil, err
	}
	if err := checkMagic(hdr[:4], idxLabelsMagic, name); err != nil {
		return nil, err
	}
	count := binary.BigEndian.Uint32(hdr[4:])
	if uint64(count) > maxTotalValues {
		return nil, fmt.Errorf("%s: implausible size: header says %d labels (over the limit of %d)", name, count, maxTotalValues)
	}
	labels, err := readBytes(r, int(count))
	if err != nil {
		if isTruncation(err) {
			return nil, fmt.Errorf("%s: truncated: header says %d labels, found only %d: %w",
				name, count, len(labels), io.ErrUnexpectedEOF)
		}
		return nil, fmt.Errorf("%s: reading labels after %d bytes: %w", name, len(labels), err)
	}
	return labels, nil
}

// readHeader fills hdr from r, reporting an empty or short stream by name.
func readHeader(r io.Reader, hdr []byte, name string) error {
	n, err := io.ReadFull(r, hdr)
	switch {
	case err == nil:
		return nil
	case n == 0 && errors.Is(err, io.EOF):
		return fmt.Errorf("%s: empty file, want a %d-byte idx header: %w", name, len(hdr), io.ErrUnexpectedEOF)
	case isTruncation(err):
		return fmt.Errorf("%s: truncated: idx header is %d bytes, want %d: %w", name, n, len(hdr), io.ErrUnexpectedEOF)
	default:
		return fmt.Errorf("%s: reading idx header: %w", name, err)
	}
}

// checkMagic compares the magic number in b with want, with a hint for the
// common mistakes: a still-compressed file, or images and labels swapped.
func checkMagic(b []byte, want uint32, name string) error {
	got := binary.BigEndian.Uint32(b)
	if got == want {
		return nil
	}
	hint := ""
	switch {
	case b[0] == 0x1f && b[1] == 0x8b:
		hint = " (the stream is still gzip-compressed)"
	case got == idxImagesMagic:
		hint = " (this is an idx image file, not a label file)"
	case got == idxLabelsMagic:
		hint = " (this is an idx label file, not an image file)"
	}
	return fmt.Errorf("%s: bad magic number 0x%08x, want 0x%08x%s", name, got, want, hint)
}

// readBytes reads exactly n bytes from r. Its buffer starts small and doubles
// as data arrives, so a header claiming more than the stream holds costs no
// more memory than the stream itself. On error it returns the bytes read so far.
func readBytes(r io.Reader, n int) ([]byte, error) {
	buf := make([]byte, 0, min(n, initialReadCap))
	for len(buf) < n {
		if len(buf) == cap(buf) {
			grown := make([]byte, len(buf), min(2*cap(buf), n))
			copy(grown, buf)
			buf = grown
		}
		m, err := io.ReadFull(r, buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+m]
		if err != nil {
			return buf, err
		}
	}
	return buf, nil
}

// isTruncation reports whether err means the stream ended early.
func isTruncation(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}
