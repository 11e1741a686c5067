package imageio

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
)

// npyMagic is the magic string that starts every .npy file.
const npyMagic = "\x93NUMPY"

// npyAlign is the alignment, in bytes, of the end of a .npy header.
const npyAlign = 64

// maxNPYHeader bounds the header length ReadNPY accepts for format
// versions 2.0 and 3.0, whose 32-bit length field could otherwise request
// up to 4 GiB. Version 1.0 headers are limited to 65535 bytes by format.
const maxNPYHeader = 1 << 20

// npyChunk is the number of float32 values WriteNPY and ReadNPY convert
// per I/O call.
const npyChunk = 1 << 14

// WriteNPY writes data as a float32 array of the given shape to w in
// numpy .npy format version 1.0, in C (row-major) order and little-endian
// byte order, so that numpy.load returns an array with dtype float32 and
// that shape.
//
// len(data) must equal the product of shape. An empty shape writes a 0-d
// array holding the single value data[0]; dimensions may be zero but not
// negative.
func WriteNPY(w io.Writer, data []float32, shape ...int) error {
	n, ok := product(shape...)
	if !ok {
		return fmt.Errorf("imageio: write npy: invalid shape %v: negative dimension or overflow", shape)
	}
	if len(data) != n {
		return fmt.Errorf("imageio: write npy: len(data) = %d does not match shape %v (%d elements)", len(data), shape, n)
	}
	header, err := npyHeader(shape)
	if err != nil {
		return fmt.Errorf("imageio: write npy: %w", err)
	}
	if _, err := io.WriteString(w, header); err != nil {
		return fmt.Errorf("imageio: write npy header: %w", err)
	}
	buf := make([]byte, 4*min(len(data), npyChunk))
	for len(data) > 0 {
		k := min(len(data), npyChunk)
		for i, v := range data[:k] {
			binary.LittleEndian.PutUint32(buf[4*i:], math.Float32bits(v))
		}
		if _, err := w.Write(buf[:4*k]); err != nil {
			return fmt.Errorf("imageio: write npy data: %w", err)
		}
		data = data[k:]
	}
	return nil
}

// npyHeader returns the complete version 1.0 header (magic, version,
// length and padded dictionary) for a little-endian float32 C-order array
// of the given shape.
func npyHeader(shape []int) (string, error) {
	var dict strings.Builder
	dict.WriteString("{'descr': '<f4', 'fortran_order': False, 'shape': (")
	for i, d := range shape {
		if i > 0 {
			dict.WriteString(", ")
		}
		dict.WriteString(strconv.Itoa(d))
	}
	if len(shape) == 1 {
		dict.WriteByte(',')
	}
	dict.WriteString("), }")

	const prefix = len(npyMagic) + 2 + 2 // magic, version, header length
	// Pad with spaces so that the header, including the trailing newline,
	// ends on an npyAlign boundary.
	total := prefix + dict.Len() + 1
	pad := (npyAlign - total%npyAlign) % npyAlign
	hlen := dict.Len() + pad + 1
	if hlen > math.MaxUint16 {
		return "", fmt.Errorf("shape %v too long for npy format 1.0 header", shape)
	}

	var b strings.Builder
	b.Grow(prefix + hlen)
	b.WriteString(npyMagic)
	b.WriteByte(1) // major version
	b.WriteByte(0) // minor version
	b.WriteByte(byte(hlen))
	b.WriteByte(byte(hlen >> 8))
	b.WriteString(dict.String())
	b.WriteString(strings.Repeat(" ", pad))
	b.WriteByte('\n')
	return b.String(), nil
}

// ReadNPY reads a numpy .npy array of little-endian float32 values in C
// order from r, returning its data and shape. Format versions 1.0, 2.0 and
// 3.0 are accepted. It returns an error for anything else, including a
// wrong magic string, a dtype other than '<f4', Fortran order, a
// malformed header, and truncated data. Data after the array is not read.
//
// ReadNPY is safe on untrusted input: header sizes are bounded and the
// result grows only as data is actually read, so a header claiming a huge
// shape fails with a truncation error rather than a huge allocation.
func ReadNPY(r io.Reader) ([]float32, []int, error) {
	var pre [8]byte
	if _, err := io.ReadFull(r, pre[:]); err != nil {
		return nil, nil, fmt.Errorf("imageio: read npy: reading magic: %w", noEOF(err))
	}
	if string(pre[:6]) != npyMagic {
		return nil, nil, fmt.Errorf("imageio: read npy: bad magic %q, not an npy file", pre[:6])
	}
	major, minor := pre[6], pre[7]
	var hlen int
	switch major {
	case 1:
		var b [2]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return nil, nil, fmt.Errorf("imageio: read npy: reading header length: %w", noEOF(err))
		}
		hlen = int(binary.LittleEndian.Uint16(b[:]))
	case 2, 3:
		var b [4]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return nil, nil, fmt.Errorf("imageio: read npy: reading header length: %w", noEOF(err))
		}
		n := binary.LittleEndian.Uint32(b[:])
		if n > maxNPYHeader {
			return nil, nil, fmt.Errorf("imageio: read npy: header length %d exceeds limit %d", n, maxNPYHeader)
		}
		hlen = int(n)
	default:
		return nil, nil, fmt.Errorf("imageio: read npy: unsupported format version %d.%d", major, minor)
	}
	if minor != 0 {
		return nil, nil, fmt.Errorf("imageio: read npy: unsupported format version %d.%d", major, minor)
	}
	hdr := make([]byte, hlen)
	if _, err := io.ReadFull(r, hdr); err != nil {
		return nil, nil, fmt.Errorf("imageio: read npy: reading %d-byte header: %w", hlen, noEOF(err))
	}
	h, err := parseNPYHeader(string(hdr))
	if err != nil {
		return nil, nil, fmt.Errorf("imageio: read npy: header %q: %w", truncate(hdr, 200), err)
	}
	if h.descr != "<f4" {
		return nil, nil, fmt.Errorf("imageio: read npy: unsupported dtype %q, want '<f4' (little-endian float32)", h.descr)
	}
	if h.fortranOrder {
		return nil, nil, errors.New("imageio: read npy: Fortran-order arrays are not supported")
	}
	n, ok := product(h.shape...)
	if !ok || n > math.MaxInt/4 {
		return nil, nil, fmt.Errorf("imageio: read npy: shape %v is too large", h.shape)
	}
	data, err := readFloat32s(r, n)
	if err != nil {
		return nil, nil, fmt.Errorf("imageio: read npy: shape %v: %w", h.shape, err)
	}
	return data, h.shape, nil
}

// readFloat32s reads n little-endian float32 values from r. Memory grows
// with the data actually read, not with n.
func readFloat32s(r io.Reader, n int) ([]float32, error) {
	data := make([]float32, 0, min(n, npyChunk))
	buf := make([]byte, 4*min(n, npyChunk))
	for len(data) < n {
		k := min(n-len(data), npyChunk)
		b := buf[:4*k]
		if m, err := io.ReadFull(r, b); err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return nil, fmt.Errorf("truncated data: got %d of %d bytes", 4*len(data)+m, 4*n)
			}
			return nil, fmt.Errorf("reading data: %w", err)
		}
		for i := range k {
			data = append(data, math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:])))
		}
	}
	return data, nil
}

// noEOF converts io.EOF to io.ErrUnexpectedEOF: running out of input
// anywhere inside an npy file means it is truncated.
func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// truncate returns b as a string of at most n bytes, for error messages.
func truncate(b []byte, n int) string {
	if len(b) <= n {
		return string(b)
	}
	return string(b[:n]) + "..."
}

// npyHeaderDict holds the fields of an npy header dictionary.
type npyHeaderDict struct {
	descr        string
	fortranOrder bool
	shape        []int
}

// parseNPYHeader parses the Python dict literal of an npy header. It
// accepts exactly the keys 'descr' (a string), 'fortran_order' (a bool)
// and 'shape' (a tuple of non-negative ints), in any order, with optional
// trailing commas and surrounding whitespace.
func parseNPYHeader(s string) (npyHeaderDict, error) {
	var h npyHeaderDict
	p := &pyParser{s: s}
	if err := p.expect('{'); err != nil {
		return h, err
	}
	seen := make(map[string]bool)
	for {
		if p.peek() == '}' {
			p.pos++
			break
		}
		key, err := p.str()
		if err != nil {
			return h, fmt.Errorf("dictionary key: %w", err)
		}
		if seen[key] {
			return h, fmt.Errorf("duplicate key %q", key)
		}
		seen[key] = true
		if err := p.expect(':'); err != nil {
			return h, err
		}
		switch key {
		case "descr":
			if h.descr, err = p.str(); err != nil {
				return h, fmt.Errorf("descr: %w", err)
			}
		case "fortran_order":
			if h.fortranOrder, err = p.boolean(); err != nil {
				return h, fmt.Errorf("fortran_order: %w", err)
			}
		case "shape":
			if h.shape, err = p.intTuple(); err != nil {
				return h, fmt.Errorf("shape: %w", err)
			}
		default:
			return h, fmt.Errorf("unexpected key %q", key)
		}
		switch p.peek() {
		case ',':
			p.pos++
		case '}':
		default:
			return h, p.errorf("expected ',' or '}'")
		}
	}
	p.skipSpace()
	if p.pos != len(p.s) {
		return h, p.errorf("trailing data after dictionary")
	}
	for _, k := range []string{"descr", "fortran_order", "shape"} {
		if !seen[k] {
			return h, fmt.Errorf("missing key %q", k)
		}
	}
	return h, nil
}

// pyParser is a minimal parser for the subset of Python literal syntax
// used in npy headers.
type pyParser struct {
	s   string
	pos int
}

func (p *pyParser) errorf(format string, args ...any) error {
	return fmt.Errorf("at offset %d: %s", p.pos, fmt.Sprintf(format, args...))
}

func (p *pyParser) skipSpace() {
	for p.pos < len(p.s) {
		switch p.s[p.pos] {
		case ' ', '\t', '\n', '\r':
			p.pos++
		default:
			return
		}
	}
}

// peek skips whitespace and returns the next byte, or 0 at end of input.
func (p *pyParser) peek() byte {
	p.skipSpace()
	if p.pos >= len(p.s) {
		return 0
	}
	return p.s[p.pos]
}

func (p *pyParser) expect(c byte) error {
	if p.peek() != c {
		return p.errorf("expected %q", c)
	}
	p.pos++
	return nil
}

// str parses a single- or double-quoted string without escapes.
func (p *pyParser) str() (string, error) {
	q := p.peek()
	if q != '\'' && q != '"' {
		return "", p.errorf("expected string")
	}
	start := p.pos + 1
	end := strings.IndexByte(p.s[start:], q)
	if end < 0 {
		return "", p.errorf("unterminated string")
	}
	v := p.s[start : start+end]
	if strings.IndexByte(v, '\\') >= 0 {
		return "", p.errorf("escape sequences in strings are not supported")
	}
	p.pos = start + end + 1
	return v, nil
}

func (p *pyParser) boolean() (bool, error) {
	p.skipSpace()
	rest := p.s[p.pos:]
	switch {
	case strings.HasPrefix(rest, "True"):
		p.pos += len("True")
		return true, nil
	case strings.HasPrefix(rest, "False"):
		p.pos += len("False")
		return false, nil
	}
	return false, p.errorf("expected True or False")
}

// intTuple parses a tuple of non-negative decimal integers such as (),
// (3,) or (2, 3). As in Python, a one-element tuple needs a trailing comma.
func (p *pyParser) intTuple() ([]int, error) {
	if err := p.expect('('); err != nil {
		return nil, err
	}
	shape := []int{}
	comma := false // whether a comma followed the last element
	for {
		c := p.peek()
		if c == ')' {
			p.pos++
			break
		}
		if c < '0' || c > '9' {
			return nil, p.errorf("expected non-negative integer")
		}
		start := p.pos
		for p.pos < len(p.s) && p.s[p.pos] >= '0' && p.s[p.pos] <= '9' {
			p.pos++
		}
		d, err := strconv.Atoi(p.s[start:p.pos])
		if err != nil {
			return nil, fmt.Errorf("dimension %q out of range", p.s[start:p.pos])
		}
		// Python 2 wrote long integers with an L suffix.
		if p.pos < len(p.s) && p.s[p.pos] == 'L' {
			p.pos++
		}
		shape = append(shape, d)
		switch p.peek() {
		case ',':
			p.pos++
			comma = true
		case ')':
			comma = false
		default:
			return nil, p.errorf("expected ',' or ')'")
		}
	}
	if len(shape) == 1 && !comma {
		return nil, p.errorf("one-element shape needs a trailing comma")
	}
	return shape, nil
}
