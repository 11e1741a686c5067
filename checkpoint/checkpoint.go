// Package checkpoint reads and writes gantrain checkpoints in the safetensors format
// (https://github.com/huggingface/safetensors), so that PyTorch users can load them.
//
// A file is an 8-byte little-endian header length N, N bytes of UTF-8 JSON header, and
// the data buffer. The header maps each tensor name to its dtype, shape and data
// offsets (relative to the start of the data buffer, end exclusive), plus an optional
// "__metadata__" object of string to string. Tensors are laid out in order,
// contiguous, with no gaps, and the header is padded with spaces so that the data
// buffer starts at an 8-byte aligned offset. Two dtypes are supported: "F32" and
// "I32", both little-endian.
//
// Encode adds the metadata entry [ChecksumKey]: a SHA-256 over the data buffer, every
// tensor's name, dtype and shape, and every other metadata entry, so that any change to
// the tensors or the metadata is detected. Decoding a file that lacks it fails with
// [ErrNoChecksum] unless [DecodeOptions.AllowUnchecked] is set, which is how files
// written by other tools are loaded.
//
// [WriteFile] replaces a file atomically: after it returns, a crash at any moment
// leaves either the old or the new complete file, never a partial one.
//
// A training run keeps its checkpoints in the [Dir] folder of its run directory, one
// file a step ([Path]); [List] finds them, [Prune] keeps the newest and the best one
// ([Best]), and [SetAside] moves one that a resume refused out of the way.
package checkpoint

import "errors"

// ChecksumKey is the metadata key under which Encode stores the hex SHA-256 checksum
// of a file's content. See [Encode] for what it covers.
const ChecksumKey = "gantrain.sha256"

// MaxHeaderSize is the largest JSON header, in bytes, that Encode writes and Decode
// accepts (100 MiB). It bounds what a malicious header can make Decode parse.
const MaxHeaderSize = 100 << 20

// metadataKey is the reserved header key holding the string metadata.
const metadataKey = "__metadata__"

// Sentinel errors. Errors returned by this package wrap one of these where it applies;
// test with errors.Is.
var (
	// ErrCorrupt reports a malformed or truncated file: a bad header length, invalid
	// JSON, an unsupported dtype, offsets that overlap, leave gaps or disagree with
	// the shape, trailing bytes, and the like.
	ErrCorrupt = errors.New("corrupt checkpoint")

	// ErrChecksum reports a well-formed file whose content does not match the
	// checksum stored under ChecksumKey: the tensors or the metadata were altered.
	ErrChecksum = errors.New("checkpoint checksum mismatch")

	// ErrNoChecksum reports a well-formed file that has no checksum, so its integrity
	// cannot be verified. Files written by Encode always have one; files written by
	// other tools do not and are accepted with DecodeOptions.AllowUnchecked.
	ErrNoChecksum = errors.New("checkpoint has no checksum")

	// ErrInvalid reports a File that Encode cannot write: an empty, duplicate or
	// reserved tensor name, a shape that does not match the data, invalid UTF-8.
	ErrInvalid = errors.New("invalid checkpoint content")
)

// Tensor is one named array, stored in row-major order.
type Tensor struct {
	// Name identifies the tensor; it is unique within a File and non-empty.
	Name string
	// Shape holds the dimensions. An empty (or nil) Shape is a scalar holding one
	// element; a zero dimension makes an empty tensor.
	Shape []int
	// F32 holds the elements of a float32 tensor. Exactly one of F32 and I32 is
	// non-nil; for an empty tensor, a non-nil empty slice sets the dtype.
	F32 []float32
	// I32 holds the elements of an int32 tensor (integer state such as step counts).
	I32 []int32
}

// DType returns the safetensors dtype of t: "F32", "I32", or "" when neither or both
// of F32 and I32 are set.
func (t *Tensor) DType() string {
	switch {
	case t.F32 != nil && t.I32 == nil:
		return dtypeF32
	case t.I32 != nil && t.F32 == nil:
		return dtypeI32
	}
	return ""
}

// Len returns the number of elements in t's data slice.
func (t *Tensor) Len() int {
	if t.F32 != nil {
		return len(t.F32)
	}
	return len(t.I32)
}

// File is a checkpoint's content: tensors in order plus string metadata.
type File struct {
	// Tensors are the arrays, in the order they are laid out in the data buffer.
	Tensors []Tensor
	// Metadata holds free-form string entries. Decode includes the ChecksumKey entry
	// it found; Encode replaces any ChecksumKey entry with a freshly computed one.
	Metadata map[string]string
}

// Tensor returns a pointer to the tensor named name within f.Tensors, and whether
// there is one.
func (f *File) Tensor(name string) (*Tensor, bool) {
	if f == nil {
		return nil, false
	}
	for i := range f.Tensors {
		if f.Tensors[i].Name == name {
			return &f.Tensors[i], true
		}
	}
	return nil, false
}

// Safetensors dtype names and their element size.
const (
	dtypeF32 = "F32"
	dtypeI32 = "I32"
	elemSize = 4 // both supported dtypes are 4 bytes
)
