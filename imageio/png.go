package imageio

import (
	"bufio"
	"errors"
	"fmt"
	"image"
	"image/png"
	"io"
	"os"
	"path/filepath"
	"runtime"
)

// EncodePNG writes img to w in PNG format.
func EncodePNG(w io.Writer, img image.Image) error {
	if img == nil {
		return errors.New("imageio: encode png: nil image")
	}
	if err := png.Encode(w, img); err != nil {
		return fmt.Errorf("imageio: encode png: %w", err)
	}
	return nil
}

// WritePNG writes img as a PNG file at path, crash-safely: the image is
// written to a temporary file in the same directory, which is synced to
// stable storage and then renamed over path, after which the directory
// itself is synced. Readers therefore see either the old file or the
// complete new one, never a partial write. The file is created with mode
// 0644.
func WritePNG(path string, img image.Image) (err error) {
	if img == nil {
		return fmt.Errorf("imageio: write png %s: nil image", path)
	}
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	if base == "" {
		return fmt.Errorf("imageio: write png %q: path names a directory", path)
	}
	f, err := os.CreateTemp(dir, "."+base+".tmp*")
	if err != nil {
		return fmt.Errorf("imageio: write png %s: %w", path, err)
	}
	tmp := f.Name()
	closed := false
	defer func() {
		if err != nil {
			if !closed {
				f.Close()
			}
			os.Remove(tmp)
		}
	}()

	bw := bufio.NewWriter(f)
	if err := png.Encode(bw, img); err != nil {
		return fmt.Errorf("imageio: write png %s: encode: %w", path, err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("imageio: write png %s: %w", path, err)
	}
	if err := f.Chmod(0o644); err != nil && runtime.GOOS != "windows" {
		return fmt.Errorf("imageio: write png %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("imageio: write png %s: sync: %w", path, err)
	}
	closed = true
	if err := f.Close(); err != nil {
		return fmt.Errorf("imageio: write png %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("imageio: write png %s: %w", path, err)
	}
	if err := syncDir(dir); err != nil {
		// The file is in place; only its durability is in doubt.
		return fmt.Errorf("imageio: write png %s: sync directory: %w", path, err)
	}
	return nil
}

// syncDir fsyncs directory dir so that a rename within it is durable.
// Directories cannot be synced on Windows, where it is a no-op.
func syncDir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
