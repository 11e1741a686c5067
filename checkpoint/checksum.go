package checkpoint

import (
	"encoding/binary"
	"encoding/hex"
	"hash"
	"slices"
)

// tensorDesc describes one tensor's place in a file, independently of its data.
type tensorDesc struct {
	name       string
	dtype      string
	shape      []int
	begin, end int64 // byte offsets in the data buffer, end exclusive
}

// The checksum stored under ChecksumKey is the lowercase hex SHA-256 of, in order:
//
//	u64(len(data)) || data
//	u64(number of tensors)
//	for each tensor, in data order: str(name) || str(dtype) || u64(rank) || u64(dim)...
//	u64(number of metadata entries other than ChecksumKey)
//	for each such entry, in sorted key order: str(key) || str(value)
//
// where u64 is a little-endian uint64 and str(s) is u64(len(s)) || s. The tensor
// descriptors make a renamed, retyped or reshaped tensor detectable too; offsets follow
// from the order, dtypes and shapes.

// hashUint64 writes v to h as a little-endian uint64.
func hashUint64(h hash.Hash, v uint64) {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], v)
	h.Write(b[:]) // a hash.Hash never returns an error
}

// hashString writes len(s) as a little-endian uint64, then s.
func hashString(h hash.Hash, s string) {
	hashUint64(h, uint64(len(s)))
	h.Write([]byte(s))
}

// hashTail writes the part of the checksum input that follows the data buffer, and
// returns the hex digest.
func hashTail(h hash.Hash, descs []tensorDesc, meta map[string]string) string {
	hashUint64(h, uint64(len(descs)))
	for _, d := range descs {
		hashString(h, d.name)
		hashString(h, d.dtype)
		hashUint64(h, uint64(len(d.shape)))
		for _, n := range d.shape {
			hashUint64(h, uint64(n))
		}
	}
	keys := sortedKeys(meta)
	hashUint64(h, uint64(len(keys)))
	for _, k := range keys {
		hashString(h, k)
		hashString(h, meta[k])
	}
	return hex.EncodeToString(h.Sum(nil))
}

// sortedKeys returns meta's keys other than ChecksumKey, sorted.
func sortedKeys(meta map[string]string) []string {
	keys := make([]string, 0, len(meta))
	for k := range meta {
		if k != ChecksumKey {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys
}
