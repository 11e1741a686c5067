package tune

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/gantrain/gantrain/internal/atomicfile"
	"github.com/gantrain/gantrain/kernels"
)

// The autotuner's cache file: for each device identity (product name, compute
// capability, driver, and a hash of the kernels' PTX, so that a new kernel build or
// driver times afresh), the choice and its time per matrix-product key:
//
//	{"version": 1, "devices": {"NVIDIA H200 | compute 9.0 | driver 13.0 | kernels 1a2b3c4d5e6f":
//	    {"tf32 nn 100x1200x1200 lda=1200 ldb=1200 vec4": {"kernel": "tc_64x64x32_w32x32_s4/split4", "us": 6.1}}}}
//
// A file that cannot be read or parsed is reported once and replaced on the next write.
const cacheVersion = 1

// Entry is a cached choice and the time it measured, per product.
type Entry struct {
	Choice kernels.GemmChoice `json:"-"`
	Kernel string             `json:"kernel"`
	Micros float64            `json:"us"`
}

// file is the cache file's content.
type file struct {
	Version int                         `json:"version"`
	Devices map[string]map[string]Entry `json:"devices"`
}

// Cache is one device identity's part of the file, in memory.
type Cache struct {
	path, device string
	entries      map[string]Entry
}

// DefaultPath is the cache file under the user's cache directory
// ($XDG_CACHE_HOME/gantrain/autotune.json, or ~/.cache/…).
func DefaultPath() (string, error) {
	dir, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("autotune cache: %w", err)
	}
	return filepath.Join(dir, "gantrain", "autotune.json"), nil
}

// Identity names what the choices depend on: the device's product name and compute
// capability, the driver API version (e.g. 13000) and the kernels' PTX.
func Identity(name, compute string, driver int, ptx string) string {
	h := sha256.Sum256([]byte(ptx))
	return fmt.Sprintf("%s | compute %s | driver %d.%d | kernels %s", name, compute, driver/1000, driver%1000/10,
		hex.EncodeToString(h[:6]))
}

// OpenCache reads path's entries for device. A missing file is an empty cache; an
// unreadable or malformed one is an empty cache and an error to report.
func OpenCache(path, device string) (*Cache, error) {
	c := &Cache{path: path, device: device, entries: map[string]Entry{}}
	f, err := readTuneFile(path)
	if err != nil {
		return c, err
	}
	for k, e := range f.Devices[device] {
		ch, err := kernels.ParseGemmChoice(e.Kernel)
		if err != nil {
			continue // an entry of another version of gantrain: timed again
		}
		e.Choice = ch
		c.entries[k] = e
	}
	return c, nil
}

func readTuneFile(path string) (*file, error) {
	f := &file{Version: cacheVersion, Devices: map[string]map[string]Entry{}}
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return f, nil
	}
	if err != nil {
		return f, fmt.Errorf("autotune cache: %w", err)
	}
	var g file
	if err := json.Unmarshal(data, &g); err != nil {
		return f, fmt.Errorf("autotune cache %s: %w (it will be rewritten)", path, err)
	}
	if g.Version != cacheVersion || g.Devices == nil {
		return f, fmt.Errorf("autotune cache %s: version %d, want %d (it will be rewritten)", path, g.Version, cacheVersion)
	}
	return &g, nil
}

// Get returns the cached entry of key; a nil cache has none.
func (c *Cache) Get(key string) (Entry, bool) {
	if c == nil {
		return Entry{}, false
	}
	e, ok := c.entries[key]
	return e, ok
}

// Put records key's entry and writes the file: re-read, so that what other runs added
// meanwhile is kept, then replaced atomically. A nil cache does nothing.
func (c *Cache) Put(key string, e Entry) error {
	if c == nil {
		return nil
	}
	e.Kernel = e.Choice.String()
	c.entries[key] = e
	f, _ := readTuneFile(c.path) // a bad file is replaced
	dev := f.Devices[c.device]
	if dev == nil {
		dev = map[string]Entry{}
		f.Devices[c.device] = dev
	}
	for k, v := range c.entries {
		v.Kernel = v.Choice.String()
		dev[k] = v
	}
	if err := os.MkdirAll(filepath.Dir(c.path), 0o755); err != nil {
		return fmt.Errorf("autotune cache: %w", err)
	}
	return atomicfile.Write(c.path, func(w io.Writer) error {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(f)
	})
}
