package imageio

import (
	"errors"
	"fmt"
	"image"
	"image/png"
	"io"

	"github.com/gantrain/gantrain/internal/atomicfile"
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
func WritePNG(path string, img image.Image) error {
	if img == nil {
		return fmt.Errorf("imageio: write png %s: nil image", path)
	}
	if err := atomicfile.Write(path, func(w io.Writer) error { return png.Encode(w, img) }); err != nil {
		return fmt.Errorf("imageio: png: %w", err)
	}
	return nil
}
