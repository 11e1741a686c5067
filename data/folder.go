package data

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	_ "image/jpeg" // register JPEG for image.Decode
	_ "image/png"  // register PNG for image.Decode
	"os"
	"path/filepath"
	"strings"
)

// imageExts are the file extensions LoadImageFolder reads, compared case-insensitively.
var imageExts = []string{".png", ".jpg", ".jpeg"}

// LoadImageFolder reads every .png, .jpg and .jpeg file (case-insensitive) in
// dir, not recursively, in name order, into one Set named after the folder.
// All images must have the same size. If every image is grayscale the Set
// has C=1; otherwise every image is converted to RGB and C=3. Pixels are
// scaled to [0,1]; transparent pixels are composited onto black. The Set has
// no labels. The format is detected from the content, so a PNG named .jpg
// still loads.
func LoadImageFolder(dir string) (*Set, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("image folder: %w", err)
	}
	var (
		names []string
		imgs  []image.Image
		gray  = true
		first image.Rectangle
	)
	for _, e := range entries {
		if e.IsDir() || !hasImageExt(e.Name()) {
			continue
		}
		path := filepath.Join(dir, e.Name())
		img, err := decodeImage(path)
		if err != nil {
			return nil, err
		}
		b := img.Bounds()
		if len(imgs) == 0 {
			first = b
		} else if b.Dx() != first.Dx() || b.Dy() != first.Dy() {
			return nil, fmt.Errorf("image folder %s: %s is %d×%d but %s (the first image) is %d×%d; all images must have one size",
				dir, e.Name(), b.Dx(), b.Dy(), names[0], first.Dx(), first.Dy())
		}
		names = append(names, e.Name())
		imgs = append(imgs, img)
		gray = gray && isGray(img)
	}
	if len(imgs) == 0 {
		return nil, fmt.Errorf("image folder %s: no images found (want files ending in %s, any case)",
			dir, strings.Join(imageExts, ", "))
	}
	shape := Shape{H: first.Dy(), W: first.Dx(), C: 3}
	if gray {
		shape.C = 1
	}
	dim := shape.Size()
	if uint64(len(imgs))*uint64(dim) > maxTotalValues {
		return nil, fmt.Errorf("image folder %s: %d images of %d×%d×%d is over the limit of %d values",
			dir, len(imgs), shape.H, shape.W, shape.C, maxTotalValues)
	}
	s := &Set{
		Name:  filepath.Base(filepath.Clean(dir)),
		X:     make([]float32, len(imgs)*dim),
		N:     len(imgs),
		Dim:   dim,
		Shape: shape,
	}
	for i, img := range imgs {
		toFloats(s.X[i*dim:(i+1)*dim], img, shape.C)
	}
	return s, nil
}

// hasImageExt reports whether name ends in one of imageExts, in any case.
func hasImageExt(name string) bool {
	ext := strings.ToLower(filepath.Ext(name))
	for _, e := range imageExts {
		if ext == e {
			return true
		}
	}
	return false
}

// decodeImage reads and decodes one image file. It checks the size in the
// header before decoding, so a file claiming a huge image is rejected without
// allocating it.
func decodeImage(path string) (image.Image, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("image folder: %w", err)
	}
	cfg, format, err := image.DecodeConfig(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("image folder: %s: cannot decode: %w", path, err)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 || uint64(cfg.Width)*uint64(cfg.Height)*3 > maxImagePixels {
		return nil, fmt.Errorf("image folder: %s: implausible %s image size %d×%d", path, format, cfg.Width, cfg.Height)
	}
	img, _, err := image.Decode(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("image folder: %s: cannot decode %s: %w", path, format, err)
	}
	if b := img.Bounds(); b.Dx() != cfg.Width || b.Dy() != cfg.Height {
		return nil, fmt.Errorf("image folder: %s: decoded size %d×%d differs from header size %d×%d",
			path, b.Dx(), b.Dy(), cfg.Width, cfg.Height)
	}
	return img, nil
}

// isGray reports whether img's colour model can only hold gray values.
func isGray(img image.Image) bool {
	switch m := img.ColorModel().(type) {
	case color.Palette:
		for _, c := range m {
			r, g, b, _ := c.RGBA()
			if r != g || g != b {
				return false
			}
		}
		return true
	default:
		return m == color.GrayModel || m == color.Gray16Model
	}
}

// toFloats writes img into dst as HWC values in [0,1] with c channels (1 or
// 3). For c == 1 the image must be gray (isGray), so its R, G and B agree.
func toFloats(dst []float32, img image.Image, c int) {
	b := img.Bounds()
	if g, ok := img.(*image.Gray); ok && c == 1 {
		i := 0
		for y := b.Min.Y; y < b.Max.Y; y++ {
			row := g.Pix[g.PixOffset(b.Min.X, y):]
			for x := range b.Dx() {
				dst[i] = byteToUnit[row[x]]
				i++
			}
		}
		return
	}
	i := 0
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA() // alpha-premultiplied: composited onto black
			if c == 1 {
				dst[i] = float32(r) / 0xffff
				i++
				continue
			}
			dst[i] = float32(r) / 0xffff
			dst[i+1] = float32(g) / 0xffff
			dst[i+2] = float32(bl) / 0xffff
			i += 3
		}
	}
}
