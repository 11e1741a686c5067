package checkpoint

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"unicode/utf8"
)

// chunkSize is the size of the buffer Encode serialises tensor data through.
const chunkSize = 64 << 10

// Encode writes f in safetensors format to w.
//
// Tensors are laid out in the order of f.Tensors. Encode adds the metadata entry
// ChecksumKey, replacing any the caller set, holding the hex SHA-256 of the data
// buffer, every tensor's name, dtype and shape, and every other metadata entry (see
// the package documentation), so that Decode detects any change to them. f itself is
// not modified.
//
// Tensor names must be unique, non-empty, valid UTF-8 and not "__metadata__"; exactly
// one of F32 and I32 must be non-nil; dimensions must be non-negative and their
// product (1 for a scalar) must equal the data length; metadata keys and values must
// be valid UTF-8. Otherwise Encode returns an error wrapping ErrInvalid and writes
// nothing. Errors from w are returned wrapped.
func Encode(w io.Writer, f *File) error {
	if f == nil {
		return fmt.Errorf("%w: nil File", ErrInvalid)
	}
	descs, dataLen, err := describe(f)
	if err != nil {
		return err
	}
	for k, v := range f.Metadata {
		if !utf8.ValidString(k) {
			return fmt.Errorf("%w: metadata key %q is not valid UTF-8", ErrInvalid, k)
		}
		if !utf8.ValidString(v) {
			return fmt.Errorf("%w: metadata value for key %q is not valid UTF-8", ErrInvalid, k)
		}
	}

	buf := make([]byte, chunkSize)
	h := sha256.New()
	hashUint64(h, uint64(dataLen))
	for i := range f.Tensors {
		// Writing to a hash.Hash never fails.
		_ = writeData(h, &f.Tensors[i], buf)
	}
	sum := hashTail(h, descs, f.Metadata)

	header := appendHeader(make([]byte, 8, 256), descs, f.Metadata, sum)
	n := len(header) - 8
	if n > MaxHeaderSize {
		return fmt.Errorf("%w: header is %d bytes, more than the %d allowed", ErrInvalid, n, MaxHeaderSize)
	}
	binary.LittleEndian.PutUint64(header, uint64(n))

	if _, err := w.Write(header); err != nil {
		return fmt.Errorf("checkpoint: writing header: %w", err)
	}
	for i := range f.Tensors {
		if err := writeData(w, &f.Tensors[i], buf); err != nil {
			return fmt.Errorf("checkpoint: writing tensor %q: %w", f.Tensors[i].Name, err)
		}
	}
	return nil
}

// describe validates f's tensors and returns their descriptors and the total data
// length in bytes.
func describe(f *File) ([]tensorDesc, int64, error) {
	descs := make([]tensorDesc, len(f.Tensors))
	seen := make(map[string]bool, len(f.Tensors))
	var off int64
	for i := range f.Tensors {
		t := &f.Tensors[i]
		switch {
		case t.Name == "":
			return nil, 0, fmt.Errorf("%w: tensor %d has an empty name", ErrInvalid, i)
		case t.Name == metadataKey:
			return nil, 0, fmt.Errorf("%w: tensor name %q is reserved", ErrInvalid, t.Name)
		case !utf8.ValidString(t.Name):
			return nil, 0, fmt.Errorf("%w: tensor name %q is not valid UTF-8", ErrInvalid, t.Name)
		case seen[t.Name]:
			return nil, 0, fmt.Errorf("%w: duplicate tensor name %q", ErrInvalid, t.Name)
		}
		seen[t.Name] = true
		dtype := t.DType()
		if dtype == "" {
			return nil, 0, fmt.Errorf("%w: tensor %q: exactly one of F32 and I32 must be set", ErrInvalid, t.Name)
		}
		count := 1
		for _, d := range t.Shape {
			if d < 0 {
				return nil, 0, fmt.Errorf("%w: tensor %q: negative dimension in shape %v", ErrInvalid, t.Name, t.Shape)
			}
			if d != 0 && count > math.MaxInt/d {
				return nil, 0, fmt.Errorf("%w: tensor %q: shape %v overflows", ErrInvalid, t.Name, t.Shape)
			}
			count *= d
		}
		if count != t.Len() {
			return nil, 0, fmt.Errorf("%w: tensor %q: shape %v holds %d elements, data has %d",
				ErrInvalid, t.Name, t.Shape, count, t.Len())
		}
		size := int64(count) * elemSize // count is a slice length: no overflow
		descs[i] = tensorDesc{name: t.Name, dtype: dtype, shape: t.Shape, begin: off, end: off + size}
		off += size
	}
	return descs, off, nil
}

// appendHeader appends the JSON header, padded with spaces to a multiple of 8 bytes,
// to b, whose length must be a multiple of 8. The metadata object comes first with
// its keys sorted, then the tensors in data order.
func appendHeader(b []byte, descs []tensorDesc, meta map[string]string, sum string) []byte {
	start := len(b)
	b = append(b, `{"`+metadataKey+`":{`...)
	keys := append(sortedKeys(meta), ChecksumKey)
	slices.Sort(keys)
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		v := sum
		if k != ChecksumKey {
			v = meta[k]
		}
		b = appendJSONString(b, k)
		b = append(b, ':')
		b = appendJSONString(b, v)
	}
	b = append(b, '}')
	for _, d := range descs {
		b = append(b, ',')
		b = appendJSONString(b, d.name)
		b = append(b, `:{"dtype":"`...)
		b = append(b, d.dtype...)
		b = append(b, `","shape":[`...)
		for i, n := range d.shape {
			if i > 0 {
				b = append(b, ',')
			}
			b = strconv.AppendInt(b, int64(n), 10)
		}
		b = append(b, `],"data_offsets":[`...)
		b = strconv.AppendInt(b, d.begin, 10)
		b = append(b, ',')
		b = strconv.AppendInt(b, d.end, 10)
		b = append(b, "]}"...)
	}
	b = append(b, '}')
	for (len(b)-start)%8 != 0 {
		b = append(b, ' ')
	}
	return b
}

// appendJSONString appends s, which must be valid UTF-8, as a JSON string.
func appendJSONString(b []byte, s string) []byte {
	q, err := json.Marshal(s)
	if err != nil {
		// Marshalling a string cannot fail; keep the header valid regardless.
		q = []byte(`""`)
	}
	return append(b, q...)
}

// writeData writes t's elements to w, little-endian, through buf.
func writeData(w io.Writer, t *Tensor, buf []byte) error {
	n := 0
	flush := func() error {
		if n == 0 {
			return nil
		}
		_, err := w.Write(buf[:n])
		n = 0
		return err
	}
	if t.F32 != nil {
		for _, v := range t.F32 {
			if n+elemSize > len(buf) {
				if err := flush(); err != nil {
					return err
				}
			}
			binary.LittleEndian.PutUint32(buf[n:], math.Float32bits(v))
			n += elemSize
		}
	} else {
		for _, v := range t.I32 {
			if n+elemSize > len(buf) {
				if err := flush(); err != nil {
					return err
				}
			}
			binary.LittleEndian.PutUint32(buf[n:], uint32(v))
			n += elemSize
		}
	}
	return flush()
}
