package checkpoint

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"unicode/utf8"
)

// DecodeOptions controls how a checkpoint is decoded.
type DecodeOptions struct {
	// AllowUnchecked accepts a well-formed file that has no ChecksumKey metadata
	// entry, such as one written by PyTorch's safetensors. Without it such a file
	// fails with ErrNoChecksum. A checksum that is present is always verified.
	AllowUnchecked bool
}

// Decode reads a checkpoint of size bytes from r and decodes it as DecodeBytes does.
// It reads no more than size bytes, so r may hold more data after the checkpoint.
// Memory grows with the bytes actually read, not with size, so a wrong size cannot
// cause a huge allocation; fewer than size bytes is an error wrapping ErrCorrupt.
func Decode(r io.Reader, size int64, opt DecodeOptions) (*File, error) {
	if size < 0 {
		return nil, fmt.Errorf("%w: negative size %d", ErrCorrupt, size)
	}
	b, err := io.ReadAll(io.LimitReader(r, size))
	if err != nil {
		return nil, fmt.Errorf("checkpoint: reading: %w", err)
	}
	if int64(len(b)) != size {
		return nil, fmt.Errorf("%w: truncated: read %d of %d bytes", ErrCorrupt, len(b), size)
	}
	return DecodeBytes(b, opt)
}

// DecodeBytes decodes and validates the checkpoint in b. The result does not
// reference b.
//
// It checks that the header length is at most MaxHeaderSize and fits in b; that the
// header is a UTF-8 JSON object, without duplicate keys, of tensor entries and an
// optional "__metadata__" object of strings; that every tensor has a non-empty name,
// dtype F32 or I32, non-negative dimensions, and data offsets that match its shape;
// that the tensors cover the data buffer contiguously, without gaps, overlaps or
// trailing bytes. Any failure is an error wrapping ErrCorrupt. It then verifies the
// checksum: a mismatch wraps ErrChecksum, and a missing checksum is ErrNoChecksum
// unless opt.AllowUnchecked is set.
//
// Tensors are returned in data order (ties between empty tensors at the same offset
// keep header order). Metadata is never nil and includes the ChecksumKey entry when
// there is one. Every tensor has a non-nil Shape and a non-nil F32 or I32 slice.
func DecodeBytes(b []byte, opt DecodeOptions) (*File, error) {
	if len(b) < 8 {
		return nil, fmt.Errorf("%w: %d bytes, shorter than the 8-byte header length", ErrCorrupt, len(b))
	}
	n := binary.LittleEndian.Uint64(b)
	if n > MaxHeaderSize {
		return nil, fmt.Errorf("%w: header length %d exceeds the %d-byte limit", ErrCorrupt, n, MaxHeaderSize)
	}
	if n > uint64(len(b)-8) {
		return nil, fmt.Errorf("%w: header length %d exceeds the %d bytes that follow it", ErrCorrupt, n, len(b)-8)
	}
	header, data := b[8:8+n], b[8+n:]

	descs, meta, err := parseHeader(header)
	if err != nil {
		return nil, fmt.Errorf("%w: header: %w", ErrCorrupt, err)
	}
	if err := checkLayout(descs, int64(len(data))); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCorrupt, err)
	}

	want, ok := meta[ChecksumKey]
	switch {
	case ok:
		h := sha256.New()
		hashUint64(h, uint64(len(data)))
		h.Write(data)
		if got := hashTail(h, descs, meta); got != want {
			return nil, fmt.Errorf("%w: stored %q, content hashes to %q", ErrChecksum, want, got)
		}
	case !opt.AllowUnchecked:
		return nil, fmt.Errorf("%w: no %q metadata entry (decode with AllowUnchecked to accept)", ErrNoChecksum, ChecksumKey)
	}

	f := &File{Tensors: make([]Tensor, len(descs)), Metadata: meta}
	for i, d := range descs {
		f.Tensors[i] = decodeTensor(d, data[d.begin:d.end])
	}
	return f, nil
}

// decodeTensor converts the little-endian bytes of the tensor described by d.
func decodeTensor(d tensorDesc, raw []byte) Tensor {
	t := Tensor{Name: d.name, Shape: d.shape}
	count := len(raw) / elemSize
	switch d.dtype {
	case dtypeF32:
		t.F32 = make([]float32, count)
		for i := range t.F32 {
			t.F32[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[i*elemSize:]))
		}
	default: // dtypeI32; checkLayout admits nothing else
		t.I32 = make([]int32, count)
		for i := range t.I32 {
			t.I32[i] = int32(binary.LittleEndian.Uint32(raw[i*elemSize:]))
		}
	}
	return t
}

// checkLayout validates the descriptors against a data buffer of dataLen bytes and
// sorts them into data order.
func checkLayout(descs []tensorDesc, dataLen int64) error {
	for _, d := range descs {
		if d.dtype != dtypeF32 && d.dtype != dtypeI32 {
			return fmt.Errorf("tensor %q: unsupported dtype %q", d.name, d.dtype)
		}
		if d.end < d.begin {
			return fmt.Errorf("tensor %q: data_offsets [%d, %d] end before begin", d.name, d.begin, d.end)
		}
		if d.end > dataLen {
			return fmt.Errorf("tensor %q: data_offsets [%d, %d] beyond the %d-byte data buffer", d.name, d.begin, d.end, dataLen)
		}
		// Count the elements, bounded by what the buffer can hold so that the
		// product cannot overflow.
		limit := dataLen / elemSize
		count := int64(1)
		if slices.Contains(d.shape, 0) {
			count = 0
		}
		for _, n := range d.shape {
			if count == 0 {
				break
			}
			if int64(n) > limit/count {
				return fmt.Errorf("tensor %q: shape %v is larger than the %d-byte data buffer", d.name, d.shape, dataLen)
			}
			count *= int64(n)
		}
		if size := count * elemSize; d.end-d.begin != size {
			return fmt.Errorf("tensor %q: data_offsets [%d, %d] span %d bytes, shape %v of %s needs %d",
				d.name, d.begin, d.end, d.end-d.begin, d.shape, d.dtype, size)
		}
	}
	slices.SortStableFunc(descs, func(a, b tensorDesc) int {
		return cmp.Or(cmp.Compare(a.begin, b.begin), cmp.Compare(a.end, b.end))
	})
	var off int64
	for _, d := range descs {
		switch {
		case d.begin > off:
			return fmt.Errorf("tensor %q: gap in data buffer: data_offsets begin at %d, previous tensor ends at %d", d.name, d.begin, off)
		case d.begin < off:
			return fmt.Errorf("tensor %q: data_offsets [%d, %d] overlap the previous tensor, which ends at %d", d.name, d.begin, d.end, off)
		}
		off = d.end
	}
	if off != dataLen {
		return fmt.Errorf("%d trailing bytes after the last tensor", dataLen-off)
	}
	return nil
}

// parseHeader parses the JSON header into tensor descriptors, in header order, and
// the metadata (never nil).
func parseHeader(header []byte) ([]tensorDesc, map[string]string, error) {
	if !utf8.Valid(header) {
		return nil, nil, errors.New("not valid UTF-8")
	}
	if len(header) == 0 || header[0] != '{' {
		return nil, nil, errors.New("does not start with '{'")
	}
	if !json.Valid(header) {
		// Report the position json gives.
		var v any
		err := json.Unmarshal(header, &v)
		if err == nil {
			err = errors.New("invalid JSON")
		}
		return nil, nil, err
	}
	p := parser{dec: json.NewDecoder(bytes.NewReader(header))}
	p.dec.UseNumber()
	var descs []tensorDesc
	meta := map[string]string{}
	if err := p.delim('{'); err != nil {
		return nil, nil, err
	}
	seen := map[string]bool{}
	for p.dec.More() {
		name, err := p.string()
		if err != nil {
			return nil, nil, err
		}
		if seen[name] {
			return nil, nil, fmt.Errorf("duplicate key %q", name)
		}
		seen[name] = true
		if name == metadataKey {
			if err := p.metadata(meta); err != nil {
				return nil, nil, fmt.Errorf("%s: %w", metadataKey, err)
			}
			continue
		}
		if name == "" {
			return nil, nil, errors.New("tensor with an empty name")
		}
		d, err := p.tensor(name)
		if err != nil {
			return nil, nil, fmt.Errorf("tensor %q: %w", name, err)
		}
		descs = append(descs, d)
	}
	if err := p.delim('}'); err != nil {
		return nil, nil, err
	}
	if tok, err := p.dec.Token(); err != io.EOF {
		return nil, nil, fmt.Errorf("unexpected %v after the header object", tok)
	}
	return descs, meta, nil
}

// parser reads the header's JSON tokens.
type parser struct {
	dec *json.Decoder
}

// token returns the next token, turning io.EOF into io.ErrUnexpectedEOF.
func (p *parser) token() (json.Token, error) {
	tok, err := p.dec.Token()
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return tok, err
}

// delim consumes the delimiter want.
func (p *parser) delim(want json.Delim) error {
	tok, err := p.token()
	if err != nil {
		return err
	}
	if d, ok := tok.(json.Delim); !ok || d != want {
		return fmt.Errorf("got %v, want %q", tok, want)
	}
	return nil
}

// string consumes a string token.
func (p *parser) string() (string, error) {
	tok, err := p.token()
	if err != nil {
		return "", err
	}
	s, ok := tok.(string)
	if !ok {
		return "", fmt.Errorf("got %v, want a string", tok)
	}
	return s, nil
}

// metadata consumes a metadata object of strings, or null, into meta.
func (p *parser) metadata(meta map[string]string) error {
	tok, err := p.token()
	if err != nil {
		return err
	}
	if tok == nil {
		return nil
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return fmt.Errorf("got %v, want an object", tok)
	}
	for p.dec.More() {
		k, err := p.string()
		if err != nil {
			return err
		}
		if _, dup := meta[k]; dup {
			return fmt.Errorf("duplicate key %q", k)
		}
		v, err := p.string()
		if err != nil {
			return fmt.Errorf("key %q: %w", k, err)
		}
		meta[k] = v
	}
	return p.delim('}')
}

// tensor consumes a tensor entry: an object with "dtype", "shape" and
// "data_offsets". Unknown fields are skipped, as the reference implementation does.
func (p *parser) tensor(name string) (tensorDesc, error) {
	d := tensorDesc{name: name}
	if err := p.delim('{'); err != nil {
		return d, err
	}
	var haveDType, haveShape, haveOffsets bool
	for p.dec.More() {
		field, err := p.string()
		if err != nil {
			return d, err
		}
		switch field {
		case "dtype":
			if haveDType {
				return d, errors.New("duplicate field dtype")
			}
			haveDType = true
			if d.dtype, err = p.string(); err != nil {
				return d, fmt.Errorf("dtype: %w", err)
			}
		case "shape":
			if haveShape {
				return d, errors.New("duplicate field shape")
			}
			haveShape = true
			shape, err := p.ints()
			if err != nil {
				return d, fmt.Errorf("shape: %w", err)
			}
			d.shape = shape
		case "data_offsets":
			if haveOffsets {
				return d, errors.New("duplicate field data_offsets")
			}
			haveOffsets = true
			offs, err := p.ints()
			if err != nil {
				return d, fmt.Errorf("data_offsets: %w", err)
			}
			if len(offs) != 2 {
				return d, fmt.Errorf("data_offsets has %d elements, want 2", len(offs))
			}
			d.begin, d.end = int64(offs[0]), int64(offs[1])
		default:
			var skip json.RawMessage
			if err := p.dec.Decode(&skip); err != nil {
				return d, fmt.Errorf("field %q: %w", field, err)
			}
		}
	}
	switch {
	case !haveDType:
		return d, errors.New("missing dtype")
	case !haveShape:
		return d, errors.New("missing shape")
	case !haveOffsets:
		return d, errors.New("missing data_offsets")
	}
	return d, p.delim('}')
}

// ints consumes an array of non-negative integers that fit in an int (and an int64).
// The result is never nil.
func (p *parser) ints() ([]int, error) {
	if err := p.delim('['); err != nil {
		return nil, err
	}
	out := []int{}
	for p.dec.More() {
		tok, err := p.token()
		if err != nil {
			return nil, err
		}
		num, ok := tok.(json.Number)
		if !ok {
			return nil, fmt.Errorf("got %v, want a non-negative integer", tok)
		}
		v, err := strconv.ParseUint(string(num), 10, 64)
		if err != nil || v > math.MaxInt || v > math.MaxInt64 {
			return nil, fmt.Errorf("%s is not a non-negative integer in range", num)
		}
		out = append(out, int(v))
	}
	return out, p.delim(']')
}
