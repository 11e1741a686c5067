package data

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// CIFAR-10's binary distribution (cifar-10-binary.tar.gz): five training batch
// files and one test batch file, in a folder called CIFAR10Folder.
const (
	CIFAR10Folder   = "cifar-10-batches-bin"
	CIFAR10TestFile = "test_batch.bin"
)

// CIFAR10TrainFiles are the five training batch files, in the order their
// records make up the training split.
var CIFAR10TrainFiles = []string{
	"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin", "data_batch_5.bin",
}

// CIFAR-10 record layout: one label byte, then the 32×32 red plane, the green
// plane and the blue plane, each row-major.
const (
	cifar10Side       = 32
	cifar10Plane      = cifar10Side * cifar10Side
	cifar10Pixels     = 3 * cifar10Plane
	CIFAR10RecordSize = 1 + cifar10Pixels // 3073 bytes
	cifar10Classes    = 10
)

// cifar10Shape is the shape of every CIFAR-10 image.
var cifar10Shape = Shape{H: cifar10Side, W: cifar10Side, C: 3}

// LoadCIFAR10 reads CIFAR-10 in its binary version from dir, or from the
// folder cifar-10-batches-bin inside dir when dir itself holds none of the
// batch files. Train is every record of data_batch_1.bin to data_batch_5.bin
// in that order (50,000 in the original), Test every record of
// test_batch.bin (10,000); Valid is nil, because CIFAR-10 has no standard
// validation split. Each Set has its labels (0 to 9), Dim 3072 and Shape{32,
// 32, 3}: the planar records are rearranged into interleaved HWC pixels in
// [0,1]. All six files are required.
func LoadCIFAR10(dir string) (*Splits, error) {
	dir = cifar10Dir(dir)
	files := append(append([]string(nil), CIFAR10TrainFiles...), CIFAR10TestFile)
	var missing []string
	sizes := make([]int64, len(files))
	for i, name := range files {
		fi, err := os.Stat(filepath.Join(dir, name))
		switch {
		case errors.Is(err, fs.ErrNotExist):
			missing = append(missing, name)
		case err != nil:
			return nil, fmt.Errorf("cifar10: %w", err)
		case !fi.Mode().IsRegular():
			return nil, fmt.Errorf("cifar10: %s is not a regular file", filepath.Join(dir, name))
		default:
			sizes[i] = fi.Size()
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("cifar10: %s missing from %s (the binary version of CIFAR-10 has %s and %s, in %s or a folder %s inside it)",
			strings.Join(missing, ", "), dir, strings.Join(CIFAR10TrainFiles, ", "), CIFAR10TestFile, dir, CIFAR10Folder)
	}
	var trainRecords int64
	for i, name := range files {
		if err := checkCIFAR10Size(filepath.Join(dir, name), sizes[i]); err != nil {
			return nil, err
		}
		if i < len(CIFAR10TrainFiles) {
			trainRecords += sizes[i] / CIFAR10RecordSize
		}
	}
	if trainRecords*cifar10Pixels > maxTotalValues {
		return nil, fmt.Errorf("cifar10 %s: %d training records of %d values is over the limit of %d values",
			dir, trainRecords, cifar10Pixels, maxTotalValues)
	}
	train := newCIFAR10Set("cifar10-train", int(trainRecords))
	at := 0
	for _, name := range CIFAR10TrainFiles {
		n, err := readCIFAR10File(filepath.Join(dir, name), train, at)
		if err != nil {
			return nil, err
		}
		at += n
	}
	testPath := filepath.Join(dir, CIFAR10TestFile)
	test := newCIFAR10Set("cifar10-test", int(sizes[len(files)-1]/CIFAR10RecordSize))
	if _, err := readCIFAR10File(testPath, test, 0); err != nil {
		return nil, err
	}
	if train.N == 0 {
		return nil, fmt.Errorf("cifar10 %s: the training batch files hold no records", dir)
	}
	return &Splits{Train: train, Test: test}, nil
}

// ReadCIFAR10 reads CIFAR-10 binary records from r until it ends, into a Set
// called name (which also labels errors) with the layout LoadCIFAR10 gives.
func ReadCIFAR10(r io.Reader, name string) (*Set, error) {
	raw, err := io.ReadAll(io.LimitReader(r, maxTotalValues/cifar10Pixels*CIFAR10RecordSize+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if err := checkCIFAR10Size(name, int64(len(raw))); err != nil {
		return nil, err
	}
	s := newCIFAR10Set(name, len(raw)/CIFAR10RecordSize)
	if err := decodeCIFAR10(s, 0, raw, name); err != nil {
		return nil, err
	}
	return s, nil
}

// cifar10Dir is dir, or its cifar-10-batches-bin folder when dir holds none of
// the batch files but that folder exists.
func cifar10Dir(dir string) string {
	for _, name := range append([]string{CIFAR10TestFile}, CIFAR10TrainFiles...) {
		if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
			return dir
		}
	}
	sub := filepath.Join(dir, CIFAR10Folder)
	if fi, err := os.Stat(sub); err == nil && fi.IsDir() {
		return sub
	}
	return dir
}

// checkCIFAR10Size checks that a file (path) of size bytes holds whole records
// and is not implausibly large.
func checkCIFAR10Size(path string, size int64) error {
	if rest := size % CIFAR10RecordSize; rest != 0 {
		return fmt.Errorf("cifar10: %s: %d bytes is not a whole number of %d-byte records: record %d is truncated (%d bytes)",
			path, size, CIFAR10RecordSize, size/CIFAR10RecordSize, rest)
	}
	if size/CIFAR10RecordSize*cifar10Pixels > maxTotalValues {
		return fmt.Errorf("cifar10: %s: %d records is over the limit of %d values", path, size/CIFAR10RecordSize, maxTotalValues)
	}
	return nil
}

// newCIFAR10Set allocates a Set of n CIFAR-10 images with their labels.
func newCIFAR10Set(name string, n int) *Set {
	return &Set{
		Name:   name,
		X:      make([]float32, n*cifar10Pixels),
		N:      n,
		Dim:    cifar10Pixels,
		Labels: make([]uint8, n),
		Shape:  cifar10Shape,
	}
}

// readCIFAR10File decodes the records of the file at path into s from example
// at on, and returns how many it read. The file's size was checked before; a
// file that changed since is an error.
func readCIFAR10File(path string, s *Set, at int) (int, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("cifar10: %w", err)
	}
	if err := checkCIFAR10Size(path, int64(len(raw))); err != nil {
		return 0, err
	}
	n := len(raw) / CIFAR10RecordSize
	if at+n > s.N {
		return 0, fmt.Errorf("cifar10: %s grew while it was read (%d records)", path, n)
	}
	if err := decodeCIFAR10(s, at, raw, "cifar10: "+path); err != nil {
		return 0, err
	}
	return n, nil
}

// decodeCIFAR10 decodes whole records raw into examples at, at+1, … of s,
// planar RGB to interleaved HWC. name labels errors (a label over 9 names the
// record).
func decodeCIFAR10(s *Set, at int, raw []byte, name string) error {
	for r := 0; r < len(raw)/CIFAR10RecordSize; r++ {
		rec := raw[r*CIFAR10RecordSize : (r+1)*CIFAR10RecordSize]
		if rec[0] >= cifar10Classes {
			return fmt.Errorf("%s: record %d (byte offset %d) has label %d, want 0-9", name, r, r*CIFAR10RecordSize, rec[0])
		}
		s.Labels[at+r] = rec[0]
		red, green, blue := rec[1:1+cifar10Plane], rec[1+cifar10Plane:1+2*cifar10Plane], rec[1+2*cifar10Plane:]
		dst := s.Row(at + r)
		for p := range cifar10Plane {
			dst[3*p] = byteToUnit[red[p]]
			dst[3*p+1] = byteToUnit[green[p]]
			dst[3*p+2] = byteToUnit[blue[p]]
		}
	}
	return nil
}
