package checkpoint

import (
	"bytes"
	"errors"
	"testing"
)

// FuzzDecode checks that DecodeBytes never panics, fails only with the package's
// sentinel errors, and that whatever it accepts re-encodes to a file that decodes to
// the same content.
func FuzzDecode(f *testing.F) {
	valid := encode(f, sampleFile())
	f.Add(valid)
	for _, n := range []int{0, 7, 8, 9, 20, len(valid) / 2, len(valid) - 13, len(valid) - 1} {
		f.Add(valid[:n])
	}
	f.Add(encode(f, &File{Tensors: []Tensor{
		{Name: "z", Shape: []int{0, 2}, F32: []float32{}},
		{Name: "s", Shape: []int{}, I32: []int32{1}},
	}}))
	f.Add(encode(f, &File{}))
	f.Add(raw(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, make([]byte, 4)))
	f.Add(raw(`{"__metadata__":{"k":"v"},"b":{"dtype":"I32","shape":[0],"data_offsets":[0,0]}}`, nil))
	f.Add(raw(`{"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,4]}}`, make([]byte, 4)))

	f.Fuzz(func(t *testing.T, b []byte) {
		for _, opt := range []DecodeOptions{{}, {AllowUnchecked: true}} {
			got, err := DecodeBytes(b, opt)
			if err != nil {
				if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrChecksum) && !errors.Is(err, ErrNoChecksum) {
					t.Fatalf("DecodeBytes(%+v) error without a sentinel: %v", opt, err)
				}
				continue
			}
			var buf bytes.Buffer
			if err := Encode(&buf, got); err != nil {
				t.Fatalf("Encode of a decoded file: %v", err)
			}
			again, err := DecodeBytes(buf.Bytes(), DecodeOptions{})
			if err != nil {
				t.Fatalf("DecodeBytes of the re-encoded file: %v", err)
			}
			if err := sameFile(again, got); err != nil {
				t.Fatalf("re-encoded file differs: %v", err)
			}
		}
	})
}
