package data

import (
	"bufio"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// Base names of the four MNIST idx files, without the ".gz" suffix that the
// original distribution adds.
const (
	MNISTTrainImages = "train-images-idx3-ubyte"
	MNISTTrainLabels = "train-labels-idx1-ubyte"
	MNISTTestImages  = "t10k-images-idx3-ubyte"
	MNISTTestLabels  = "t10k-labels-idx1-ubyte"
)

// MNISTValidSize is the number of training images held out for validation:
// the last 10,000, as in Goodfellow et al. 2014.
const MNISTValidSize = 10000

// mnistClasses is the number of MNIST labels (the digits 0 to 9).
const mnistClasses = 10

// LoadMNIST reads MNIST from the four idx files in dir, gzip'ed as
// distributed (train-images-idx3-ubyte.gz and so on) or uncompressed (the same
// names without .gz); compression is detected from the content, not the name.
// Train is the first 50,000 training images, Valid the last 10,000 training
// images and Test the 10,000 t10k images, each with its labels, Dim 784 and
// Shape{28, 28, 1}. The splits share memory with one another as Slices of the
// training file.
func LoadMNIST(dir string) (*Splits, error) {
	train, err := loadLabelled(dir, MNISTTrainImages, MNISTTrainLabels)
	if err != nil {
		return nil, err
	}
	test, err := loadLabelled(dir, MNISTTestImages, MNISTTestLabels)
	if err != nil {
		return nil, err
	}
	if train.Shape != test.Shape {
		return nil, fmt.Errorf("mnist %s: training images are %d×%d but test images are %d×%d",
			dir, train.Shape.H, train.Shape.W, test.Shape.H, test.Shape.W)
	}
	if train.N <= MNISTValidSize {
		return nil, fmt.Errorf("mnist %s: %s has %d images, need more than %d to hold out a validation split",
			dir, MNISTTrainImages, train.N, MNISTValidSize)
	}
	cut := train.N - MNISTValidSize
	test.Name = "mnist-test"
	return &Splits{
		Train: train.Slice(0, cut, "mnist-train"),
		Valid: train.Slice(cut, train.N, "mnist-valid"),
		Test:  test,
	}, nil
}

// loadLabelled reads an image file and its label file and attaches the labels.
func loadLabelled(dir, imagesBase, labelsBase string) (*Set, error) {
	var set *Set
	imagesPath, err := readIDXFile(dir, imagesBase, func(r io.Reader, name string) error {
		var err error
		set, err = ReadIDXImages(r, name)
		return err
	})
	if err != nil {
		return nil, err
	}
	var labels []uint8
	labelsPath, err := readIDXFile(dir, labelsBase, func(r io.Reader, name string) error {
		var err error
		labels, err = ReadIDXLabels(r, name)
		return err
	})
	if err != nil {
		return nil, err
	}
	if len(labels) != set.N {
		return nil, fmt.Errorf("mnist: %s has %d images but %s has %d labels", imagesPath, set.N, labelsPath, len(labels))
	}
	for i, l := range labels {
		if l >= mnistClasses {
			return nil, fmt.Errorf("mnist: %s: label %d at index %d is not a digit 0-9", labelsPath, l, i)
		}
	}
	set.Labels = labels
	return set, nil
}

// readIDXFile opens base.gz or, failing that, base in dir, decompresses it if
// it starts with the gzip magic bytes, and hands the stream to parse. After
// parse it drains the gzip stream so that a corrupt or truncated compressed
// file is reported even when the idx payload was complete. It returns the
// path it opened.
func readIDXFile(dir, base string, parse func(r io.Reader, name string) error) (string, error) {
	path := filepath.Join(dir, base+".gz")
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		path = filepath.Join(dir, base)
		f, err = os.Open(path)
		if errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("mnist: neither %s.gz nor %s found in %s", base, base, dir)
		}
	}
	if err != nil {
		return "", fmt.Errorf("mnist: %w", err)
	}
	defer f.Close()

	br := bufio.NewReaderSize(f, 1<<16)
	magic, _ := br.Peek(2)
	if len(magic) < 2 || magic[0] != 0x1f || magic[1] != 0x8b {
		return path, parse(br, path)
	}
	zr, err := gzip.NewReader(br)
	if err != nil {
		return path, fmt.Errorf("%s: decompressing: %w", path, err)
	}
	if err := parse(zr, path); err != nil {
		return path, err
	}
	if _, err := io.Copy(io.Discard, zr); err != nil {
		return path, fmt.Errorf("%s: decompressing: %w", path, err)
	}
	if err := zr.Close(); err != nil {
		return path, fmt.Errorf("%s: decompressing: %w", path, err)
	}
	return path, nil
}
