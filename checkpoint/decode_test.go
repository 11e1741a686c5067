package checkpoint

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
	"testing"
)

// raw builds a file from a header, used verbatim, and a data buffer.
func raw(header string, data []byte) []byte {
	b := binary.LittleEndian.AppendUint64(nil, uint64(len(header)))
	b = append(b, header...)
	return append(b, data...)
}

// headerRange returns the header's bounds within an encoded file.
func headerRange(b []byte) (start, end int) {
	return 8, 8 + int(binary.LittleEndian.Uint64(b))
}

// replaceInHeader replaces old, which must occur exactly once in b's header, by new
// of the same length.
func replaceInHeader(t *testing.T, b []byte, old, new string) []byte {
	t.Helper()
	if len(old) != len(new) {
		t.Fatalf("replaceInHeader: %q and %q differ in length", old, new)
	}
	s, e := headerRange(b)
	h := string(b[s:e])
	if strings.Count(h, old) != 1 {
		t.Fatalf("replaceInHeader: %q occurs %d times in %s", old, strings.Count(h, old), h)
	}
	c := bytes.Clone(b)
	copy(c[s:e], strings.Replace(h, old, new, 1))
	return c
}

func TestDecodeDetectsDataChange(t *testing.T) {
	b := encode(t, sampleFile())
	_, dataStart := headerRange(b)
	for i := dataStart; i < len(b); i++ {
		for _, mask := range []byte{0x01, 0x80} {
			c := bytes.Clone(b)
			c[i] ^= mask
			if _, err := DecodeBytes(c, DecodeOptions{}); !errors.Is(err, ErrChecksum) {
				t.Fatalf("flipping bit %#x of data byte %d: err = %v, want ErrChecksum", mask, i-dataStart, err)
			}
			// AllowUnchecked does not disable a checksum that is present.
			if _, err := DecodeBytes(c, DecodeOptions{AllowUnchecked: true}); !errors.Is(err, ErrChecksum) {
				t.Fatalf("AllowUnchecked, flipping data byte %d: err = %v, want ErrChecksum", i-dataStart, err)
			}
		}
	}
}

func TestDecodeDetectsHeaderChange(t *testing.T) {
	tests := []struct {
		name     string
		old, new string
	}{
		{"metadata value", `"pt"`, `"pu"`},
		{"metadata key", `"format"`, `"formaT"`},
		{"tensor name", `"step"`, `"stap"`},
		{"dtype", `"rng.state":{"dtype":"I32"`, `"rng.state":{"dtype":"F32"`},
		{"shape", `"shape":[2,3]`, `"shape":[3,2]`},
	}
	b := encode(t, sampleFile())
	if _, err := DecodeBytes(b, DecodeOptions{}); err != nil {
		t.Fatalf("unmodified file: %v", err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := replaceInHeader(t, b, tt.old, tt.new)
			if _, err := DecodeBytes(c, DecodeOptions{}); !errors.Is(err, ErrChecksum) {
				t.Errorf("err = %v, want ErrChecksum", err)
			}
		})
	}
	t.Run("checksum digit", func(t *testing.T) {
		s, e := headerRange(b)
		i := s + strings.Index(string(b[s:e]), ChecksumKey) + len(ChecksumKey) + 3
		for _, r := range []byte{'0', 'f', 'F', 'z'} {
			if b[i] == r {
				continue
			}
			c := bytes.Clone(b)
			c[i] = r
			if _, err := DecodeBytes(c, DecodeOptions{}); !errors.Is(err, ErrChecksum) {
				t.Errorf("checksum digit %q: err = %v, want ErrChecksum", r, err)
			}
		}
	})
}

// TestDecodeAnyByteFlip flips bits of every byte of a file in turn: decoding must
// fail, never succeed or panic. The error is ErrCorrupt or ErrChecksum, or
// ErrNoChecksum where the flip renamed the checksum key. (Only other JSON whitespace
// in the header padding is harmless.)
func TestDecodeAnyByteFlip(t *testing.T) {
	b := encode(t, sampleFile())
	s, e := headerRange(b)
	pad := e - len(strings.TrimRight(string(b[s:e]), " "))
	keyStart := s + strings.Index(string(b[s:e]), ChecksumKey)
	for i := range b {
		for _, mask := range []byte{0x01, 0x20, 0x80} {
			c := bytes.Clone(b)
			c[i] ^= mask
			_, err := DecodeBytes(c, DecodeOptions{})
			if i >= e-pad && i < e && (c[i] == '\t' || c[i] == '\n' || c[i] == '\r') {
				continue // other JSON whitespace in the padding
			}
			inKey := i >= keyStart && i < keyStart+len(ChecksumKey)
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrChecksum) && !(inKey && errors.Is(err, ErrNoChecksum)) {
				t.Fatalf("flipping bit %#x of byte %d: err = %v, want ErrCorrupt or ErrChecksum", mask, i, err)
			}
		}
	}
}

func TestDecodeTruncated(t *testing.T) {
	b := encode(t, sampleFile())
	for n := range len(b) {
		_, err := DecodeBytes(b[:n], DecodeOptions{})
		if !errors.Is(err, ErrCorrupt) {
			t.Fatalf("truncated to %d of %d bytes: err = %v, want ErrCorrupt", n, len(b), err)
		}
		_, err = DecodeBytes(b[:n], DecodeOptions{AllowUnchecked: true})
		if !errors.Is(err, ErrCorrupt) {
			t.Fatalf("AllowUnchecked, truncated to %d of %d bytes: err = %v, want ErrCorrupt", n, len(b), err)
		}
	}
	for _, extra := range [][]byte{{0}, []byte("        "), []byte("garbage")} {
		if _, err := DecodeBytes(append(bytes.Clone(b), extra...), DecodeOptions{}); !errors.Is(err, ErrCorrupt) {
			t.Errorf("trailing %q: err = %v, want ErrCorrupt", extra, err)
		}
	}
}

func TestDecodeMalformed(t *testing.T) {
	data8 := make([]byte, 8)
	hugeLen := func(n uint64) []byte {
		b := binary.LittleEndian.AppendUint64(nil, n)
		return append(b, `{}`...)
	}
	tensor := func(name, dtype, shape, offsets string) string {
		return `"` + name + `":{"dtype":"` + dtype + `","shape":` + shape + `,"data_offsets":` + offsets + `}`
	}
	tests := []struct {
		name string
		file []byte
	}{
		{"empty input", nil},
		{"7 bytes", []byte{2, 0, 0, 0, 0, 0, 0}},
		{"header length over limit", hugeLen(MaxHeaderSize + 1)},
		{"header length 2^63", hugeLen(1 << 63)},
		{"header length max uint64", hugeLen(^uint64(0))},
		{"header length past end", hugeLen(3)},
		{"empty header", raw(``, nil)},
		{"header not JSON", raw(`{"a":`, nil)},
		{"header not an object", raw(`[]`, nil)},
		{"header null", raw(`null`, nil)},
		{"leading whitespace", raw(` {}`, nil)},
		{"two objects", raw(`{}{}`, nil)},
		{"trailing garbage", raw(`{} x`, nil)},
		{"invalid UTF-8", raw(`{"__metadata__":{"k":"`+"\xff"+`"}}`, nil)},
		{"tensor not an object", raw(`{"a":[1]}`, nil)},
		{"duplicate tensor", raw(`{`+tensor("a", "F32", "[1]", "[0,4]")+`,`+tensor("a", "F32", "[1]", "[4,8]")+`}`, data8)},
		{"duplicate metadata", raw(`{"__metadata__":{},"__metadata__":{}}`, nil)},
		{"duplicate metadata key", raw(`{"__metadata__":{"k":"v","k":"w"}}`, nil)},
		{"metadata not an object", raw(`{"__metadata__":["k"]}`, nil)},
		{"metadata number value", raw(`{"__metadata__":{"k":1}}`, nil)},
		{"metadata null value", raw(`{"__metadata__":{"k":null}}`, nil)},
		{"metadata object value", raw(`{"__metadata__":{"k":{}}}`, nil)},
		{"empty tensor name", raw(`{`+tensor("", "F32", "[1]", "[0,4]")+`}`, data8[:4])},
		{"unknown dtype", raw(`{`+tensor("a", "F16", "[2]", "[0,4]")+`}`, data8[:4])},
		{"lowercase dtype", raw(`{`+tensor("a", "f32", "[1]", "[0,4]")+`}`, data8[:4])},
		{"dtype not a string", raw(`{"a":{"dtype":1,"shape":[1],"data_offsets":[0,4]}}`, data8[:4])},
		{"dtype null", raw(`{"a":{"dtype":null,"shape":[1],"data_offsets":[0,4]}}`, data8[:4])},
		{"missing dtype", raw(`{"a":{"shape":[1],"data_offsets":[0,4]}}`, data8[:4])},
		{"missing shape", raw(`{"a":{"dtype":"F32","data_offsets":[0,4]}}`, data8[:4])},
		{"missing offsets", raw(`{"a":{"dtype":"F32","shape":[1]}}`, data8[:4])},
		{"duplicate field", raw(`{"a":{"dtype":"F32","dtype":"I32","shape":[1],"data_offsets":[0,4]}}`, data8[:4])},
		{"shape null", raw(`{`+tensor("a", "F32", "null", "[0,4]")+`}`, data8[:4])},
		{"shape element null", raw(`{`+tensor("a", "F32", "[null]", "[0,0]")+`}`, nil)},
		{"negative dim", raw(`{`+tensor("a", "F32", "[-1]", "[0,4]")+`}`, data8[:4])},
		{"negative dims", raw(`{`+tensor("a", "F32", "[-1,-1]", "[0,4]")+`}`, data8[:4])},
		{"fractional dim", raw(`{`+tensor("a", "F32", "[1.0]", "[0,4]")+`}`, data8[:4])},
		{"exponent dim", raw(`{`+tensor("a", "F32", "[1e0]", "[0,4]")+`}`, data8[:4])},
		{"dim beyond int64", raw(`{`+tensor("a", "F32", "[18446744073709551616]", "[0,4]")+`}`, data8[:4])},
		{"dim beyond int64 max", raw(`{`+tensor("a", "F32", "[9223372036854775808]", "[0,4]")+`}`, data8[:4])},
		{"product overflows", raw(`{`+tensor("a", "F32", "[4294967296,4294967296,4]", "[0,0]")+`}`, nil)},
		{"product wraps to 1", raw(`{`+tensor("a", "F32", "[4611686018427387904,4]", "[0,4]")+`}`, data8[:4])},
		{"shape larger than offsets", raw(`{`+tensor("a", "F32", "[2]", "[0,4]")+`}`, data8[:4])},
		{"shape smaller than offsets", raw(`{`+tensor("a", "F32", "[1]", "[0,8]")+`}`, data8)},
		{"offsets one element", raw(`{`+tensor("a", "F32", "[1]", "[4]")+`}`, data8[:4])},
		{"offsets three elements", raw(`{`+tensor("a", "F32", "[1]", "[0,4,8]")+`}`, data8[:4])},
		{"negative offset", raw(`{`+tensor("a", "F32", "[1]", "[-4,0]")+`}`, data8[:4])},
		{"offsets reversed", raw(`{`+tensor("a", "F32", "[0]", "[4,0]")+`}`, data8[:4])},
		{"offsets past buffer", raw(`{`+tensor("a", "F32", "[1]", "[4,8]")+`}`, data8[:4])},
		{"huge offsets", raw(`{`+tensor("a", "F32", "[1]", "[9223372036854775803,9223372036854775807]")+`}`, data8[:4])},
		{"first tensor not at 0", raw(`{`+tensor("a", "F32", "[1]", "[4,8]")+`}`, data8)},
		{"gap", raw(`{`+tensor("a", "F32", "[1]", "[0,4]")+`,`+tensor("b", "F32", "[1]", "[8,12]")+`}`, make([]byte, 12))},
		{"overlap", raw(`{`+tensor("a", "F32", "[2]", "[0,8]")+`,`+tensor("b", "I32", "[1]", "[4,8]")+`}`, data8)},
		{"same offsets", raw(`{`+tensor("a", "F32", "[1]", "[0,4]")+`,`+tensor("b", "I32", "[1]", "[0,4]")+`}`, data8[:4])},
		{"empty tensor inside another", raw(`{`+tensor("a", "F32", "[2]", "[0,8]")+`,`+tensor("b", "I32", "[0]", "[4,4]")+`}`, data8)},
		{"trailing data", raw(`{`+tensor("a", "F32", "[1]", "[0,4]")+`}`, data8)},
		{"data without tensors", raw(`{}`, data8)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeBytes(tt.file, DecodeOptions{AllowUnchecked: true})
			if !errors.Is(err, ErrCorrupt) {
				t.Errorf("err = %v, want ErrCorrupt", err)
			}
		})
	}
}

// TestDecodeForeign decodes files as another safetensors writer produces them: no
// checksum, header keys in any order, optional metadata.
func TestDecodeForeign(t *testing.T) {
	data := []byte{
		0x00, 0x00, 0x80, 0x3f, // b: 1.0f
		0x05, 0x00, 0x00, 0x00, // a: int32 5
	}
	tests := []struct {
		name     string
		header   string
		wantMeta map[string]string
	}{
		{"no metadata",
			`{"a":{"dtype":"I32","shape":[],"data_offsets":[4,8]},"b":{"dtype":"F32","shape":[1,1],"data_offsets":[0,4]}}`,
			map[string]string{}},
		{"metadata without checksum, padding",
			`{"__metadata__":{"format":"pt"},"b":{"dtype":"F32","shape":[1,1],"data_offsets":[0,4]},"a":{"dtype":"I32","shape":[],"data_offsets":[4,8]}}     `,
			map[string]string{"format": "pt"}},
		{"null metadata, whitespace, unknown field",
			"{\n \"__metadata__\": null,\n \"b\": {\"dtype\": \"F32\", \"shape\": [1, 1], \"data_offsets\": [0, 4], \"extra\": {\"x\": [1]}},\n \"a\": {\"data_offsets\": [4, 8], \"shape\": [], \"dtype\": \"I32\"}\n}\n",
			map[string]string{}},
	}
	want := &File{Tensors: []Tensor{
		{Name: "b", Shape: []int{1, 1}, F32: []float32{1}},
		{Name: "a", Shape: []int{}, I32: []int32{5}},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := raw(tt.header, data)
			if _, err := DecodeBytes(b, DecodeOptions{}); !errors.Is(err, ErrNoChecksum) {
				t.Errorf("strict decode: err = %v, want ErrNoChecksum", err)
			}
			got, err := DecodeBytes(b, DecodeOptions{AllowUnchecked: true})
			if err != nil {
				t.Fatalf("AllowUnchecked: %v", err)
			}
			want.Metadata = tt.wantMeta
			if err := sameFile(got, want); err != nil {
				t.Error(err)
			}
			if got.Metadata == nil {
				t.Error("Metadata is nil, want an empty map")
			}
		})
	}
}

func TestDecodeReader(t *testing.T) {
	b := encode(t, sampleFile())
	tests := []struct {
		name    string
		input   []byte
		size    int64
		wantErr error
	}{
		{"exact", b, int64(len(b)), nil},
		{"more data follows", append(bytes.Clone(b), "next"...), int64(len(b)), nil},
		{"size too large", b, int64(len(b)) + 1, ErrCorrupt},
		{"size claims 1 TiB", b, 1 << 40, ErrCorrupt},
		{"size too small", b, int64(len(b)) - 1, ErrCorrupt},
		{"negative size", b, -1, ErrCorrupt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := Decode(bytes.NewReader(tt.input), tt.size, DecodeOptions{})
			if !errors.Is(err, tt.wantErr) || (err == nil) != (tt.wantErr == nil) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if err == nil {
				if err := sameFile(f, sampleFile()); err != nil {
					t.Error(err)
				}
			}
		})
	}
}

func TestDecodeDoesNotAliasInput(t *testing.T) {
	b := encode(t, sampleFile())
	f, err := DecodeBytes(b, DecodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	clear(b)
	if err := sameFile(f, sampleFile()); err != nil {
		t.Errorf("after clearing the input: %v", err)
	}
}
