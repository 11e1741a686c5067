package data

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	_ "image/jpeg" // register JPEG for image.Decode
	_ "image/png"  // register PNG for image.Decode
	"math"
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
	return LoadImageFolderSized(dir, 0)
}

// MaxImageSide is the largest size LoadImageFolderSized resizes images to.
const MaxImageSide = 1024

// LoadImageFolderSized is LoadImageFolder with every image center-cropped to
// a square (the middle of its longer side, the whole of its shorter one) and
// resized to size×size, so that images of different sizes load into one Set
// of Shape{size, size, C}. Downscaling averages the area each new pixel
// covers (a box filter); upscaling interpolates bilinearly. Size 0 keeps the
// images as they are, which must then all have one size; otherwise size must
// be in 1..MaxImageSide.
func LoadImageFolderSized(dir string, size int) (*Set, error) {
	if size < 0 || size > MaxImageSide {
		return nil, fmt.Errorf("image folder %s: image size must be in 1..%d (0: keep the size), got %d", dir, MaxImageSide, size)
	}
	names, err := imageFiles(dir)
	if err != nil {
		return nil, err
	}
	if size > 0 {
		return loadResized(dir, names, size)
	}
	var (
		imgs  []image.Image
		gray  = true
		first image.Rectangle
	)
	for _, name := range names {
		img, err := decodeImage(filepath.Join(dir, name))
		if err != nil {
			return nil, err
		}
		b := img.Bounds()
		if len(imgs) == 0 {
			first = b
		} else if b.Dx() != first.Dx() || b.Dy() != first.Dy() {
			return nil, fmt.Errorf("image folder %s: %s is %d×%d but %s (the first image) is %d×%d; all images must have one size (or set an image size to crop and resize them)",
				dir, name, b.Dx(), b.Dy(), names[0], first.Dx(), first.Dy())
		}
		imgs = append(imgs, img)
		gray = gray && isGray(img)
	}
	shape := Shape{H: first.Dy(), W: first.Dx(), C: 3}
	if gray {
		shape.C = 1
	}
	s, err := newFolderSet(dir, len(imgs), shape)
	if err != nil {
		return nil, err
	}
	for i, img := range imgs {
		toFloats(s.Row(i), img, shape.C)
	}
	return s, nil
}

// imageFiles lists the names of the image files in dir (hasImageExt), in name
// order; none is an error.
func imageFiles(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("image folder: %w", err)
	}
	var names []string
	for _, e := range entries {
		if !e.IsDir() && hasImageExt(e.Name()) {
			names = append(names, e.Name())
		}
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("image folder %s: no images found (want files ending in %s, any case)",
			dir, strings.Join(imageExts, ", "))
	}
	return names, nil
}

// newFolderSet allocates the Set of n images of shape read from dir, within
// the limit on a data set's size.
func newFolderSet(dir string, n int, shape Shape) (*Set, error) {
	dim := shape.Size()
	if uint64(n)*uint64(dim) > maxTotalValues {
		return nil, fmt.Errorf("image folder %s: %d images of %d×%d×%d is over the limit of %d values",
			dir, n, shape.H, shape.W, shape.C, maxTotalValues)
	}
	return &Set{
		Name:  filepath.Base(filepath.Clean(dir)),
		X:     make([]float32, n*dim),
		N:     n,
		Dim:   dim,
		Shape: shape,
	}, nil
}

// loadResized reads the images names in dir one at a time, each cropped and
// resized to size×size as soon as it is decoded, so that only the resized
// pixels are kept. They are held as RGB and reduced to one channel at the
// end if every image is gray.
func loadResized(dir string, names []string, size int) (*Set, error) {
	s, err := newFolderSet(dir, len(names), Shape{H: size, W: size, C: 3})
	if err != nil {
		return nil, err
	}
	gray := true
	for i, name := range names {
		img, err := decodeImage(filepath.Join(dir, name))
		if err != nil {
			return nil, err
		}
		gray = gray && isGray(img)
		cropResize(s.Row(i), img, size)
	}
	if !gray {
		return s, nil
	}
	g, err := newFolderSet(dir, len(names), Shape{H: size, W: size, C: 1})
	if err != nil {
		return nil, err
	}
	for i := range g.X {
		g.X[i] = s.X[3*i] // a gray image's R, G and B agree
	}
	return g, nil
}

// cropResize writes the middle square of img, resized to size×size, into dst
// as RGB HWC values in [0,1].
func cropResize(dst []float32, img image.Image, size int) {
	b := img.Bounds()
	side := min(b.Dx(), b.Dy())
	x0, y0 := b.Min.X+(b.Dx()-side)/2, b.Min.Y+(b.Dy()-side)/2
	src := make([]float32, side*side*3)
	toFloats(src, cropped{img, image.Rect(x0, y0, x0+side, y0+side)}, 3)
	resizeSquare(dst, src, side, size, 3)
}

// cropped is img seen through the rectangle r.
type cropped struct {
	image.Image
	r image.Rectangle
}

// Bounds returns the crop rectangle.
func (c cropped) Bounds() image.Rectangle { return c.r }

// tap is one input pixel's weight in an output pixel.
type tap struct {
	i int
	w float32
}

// resampleTaps gives, for each of out output positions along one axis of in
// input positions, the input positions it is made of and their weights (which
// sum to 1). Downscaling averages the input interval each output pixel covers,
// partly covered pixels weighted by their overlap (a box filter); upscaling
// interpolates linearly between the two nearest input pixel centres, clamped
// at the edges.
func resampleTaps(in, out int) [][]tap {
	taps := make([][]tap, out)
	scale := float64(in) / float64(out)
	for o := range taps {
		switch {
		case in == out:
			taps[o] = []tap{{o, 1}}
		case in > out:
			lo, hi := float64(o)*scale, float64(o+1)*scale
			var ts []tap
			var sum float64
			for i := int(math.Floor(lo)); i < min(in, int(math.Ceil(hi))); i++ {
				if w := math.Min(hi, float64(i+1)) - math.Max(lo, float64(i)); w > 1e-9 {
					ts = append(ts, tap{i, float32(w)})
					sum += w
				}
			}
			for k := range ts {
				ts[k].w = float32(float64(ts[k].w) / sum)
			}
			taps[o] = ts
		default:
			x := math.Min(math.Max((float64(o)+0.5)*scale-0.5, 0), float64(in-1))
			i0 := int(x)
			f := x - float64(i0)
			if f == 0 {
				taps[o] = []tap{{i0, 1}}
			} else {
				taps[o] = []tap{{i0, float32(1 - f)}, {i0 + 1, float32(f)}}
			}
		}
	}
	return taps
}

// resizeSquare resizes src, an in×in image of c interleaved channels, to the
// out×out image dst: rows first, then columns, each with resampleTaps. Values
// are clamped to [0,1] against rounding.
func resizeSquare(dst, src []float32, in, out, c int) {
	taps := resampleTaps(in, out)
	rows := make([]float32, in*out*c) // in rows of out pixels
	for y := range in {
		srow, drow := src[y*in*c:(y+1)*in*c], rows[y*out*c:(y+1)*out*c]
		for ox, ts := range taps {
			for ch := range c {
				var v float32
				for _, t := range ts {
					v += t.w * srow[t.i*c+ch]
				}
				drow[ox*c+ch] = v
			}
		}
	}
	for oy, ts := range taps {
		drow := dst[oy*out*c : (oy+1)*out*c]
		for k := range drow {
			var v float32
			for _, t := range ts {
				v += t.w * rows[t.i*out*c+k]
			}
			drow[k] = min(max(v, 0), 1)
		}
	}
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
