package checkpoint

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// pythonScript reads and writes safetensors files independently of this package: with
// the safetensors package when it is importable, and by hand with struct, json and
// numpy (which it needs) otherwise. It also recomputes the checksum.
const pythonScript = `
import hashlib, json, struct, sys

def have(mod):
    try:
        __import__(mod)
        return True
    except Exception:
        return False

def probe():
    st = have("safetensors") and have("safetensors.torch") and have("torch")
    print(json.dumps({"numpy": have("numpy"), "torch": have("torch"), "safetensors": st}))

def u64(v):
    return struct.pack("<Q", v)

def s(x):
    b = x.encode("utf-8")
    return u64(len(b)) + b

def check(path, expected_path):
    import numpy as np
    with open(path, "rb") as f:
        b = f.read()
    exp = json.load(open(expected_path, encoding="utf-8"))
    (n,) = struct.unpack("<Q", b[:8])
    assert (8 + n) % 8 == 0, "data buffer at %d is not 8-byte aligned" % (8 + n)
    hdr = json.loads(b[8:8 + n].decode("utf-8"))
    data = b[8 + n:]
    meta = hdr.pop("__metadata__", None) or {}
    assert meta == exp["metadata"], "metadata %r != %r" % (meta, exp["metadata"])
    entries = sorted(hdr.items(), key=lambda kv: tuple(kv[1]["data_offsets"]))
    assert [k for k, _ in entries] == [t["name"] for t in exp["tensors"]], "order %r" % [k for k, _ in entries]
    off = 0
    arrays = {}
    for (name, info), t in zip(entries, exp["tensors"]):
        begin, end = info["data_offsets"]
        assert begin == off, "%s: begins at %d, want %d" % (name, begin, off)
        off = end
        dt = {"F32": "<f4", "I32": "<i4"}[info["dtype"]]
        assert info["dtype"] == t["dtype"] and info["shape"] == t["shape"], name
        arr = np.frombuffer(data[begin:end], dtype=dt).reshape(info["shape"])
        want = np.array(t["values"], dtype=dt).reshape(t["shape"])
        assert np.array_equal(arr.view("<u4"), want.view("<u4")), "%s: %r != %r" % (name, arr, want)
        arrays[name] = arr
    assert off == len(data), "trailing bytes"
    # Recompute the checksum from its definition.
    h = hashlib.sha256()
    h.update(u64(len(data)) + data + u64(len(entries)))
    for name, info in entries:
        h.update(s(name) + s(info["dtype"]) + u64(len(info["shape"])))
        for d in info["shape"]:
            h.update(u64(d))
    keys = sorted(k for k in meta if k != "gantrain.sha256")
    h.update(u64(len(keys)))
    for k in keys:
        h.update(s(k) + s(meta[k]))
    assert h.hexdigest() == meta["gantrain.sha256"], "checksum %s != %s" % (h.hexdigest(), meta["gantrain.sha256"])
    checked = ["struct+json+numpy", "checksum"]
    if have("torch"):
        import torch
        for name, arr in arrays.items():
            tt = torch.from_numpy(arr.copy())
            assert list(tt.shape) == list(arr.shape), name
        checked.append("torch.from_numpy")
    if have("safetensors") and have("torch"):
        from safetensors.torch import load_file
        loaded = load_file(path)
        assert sorted(loaded) == sorted(arrays), sorted(loaded)
        for name, arr in arrays.items():
            assert loaded[name].numpy().tobytes() == arr.tobytes(), name
        checked.append("safetensors.torch.load_file")
    print("OK " + ", ".join(checked))

def write(path):
    try:
        import torch
        from safetensors.torch import save_file
        save_file({"w": torch.arange(6, dtype=torch.float32).reshape(2, 3) * 0.5,
                   "step": torch.tensor(7, dtype=torch.int32)}, path, metadata={"format": "pt"})
        print("OK safetensors.torch.save_file")
        return
    except ImportError:
        pass
    import numpy as np
    w = (np.arange(6, dtype="<f4") * 0.5).reshape(2, 3)
    step = np.array(7, dtype="<i4")
    hdr = {"__metadata__": {"format": "pt"},
           "step": {"dtype": "I32", "shape": [], "data_offsets": [24, 28]},
           "w": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]}}
    h = json.dumps(hdr, separators=(",", ":")).encode("utf-8")
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(u64(len(h)) + h + w.tobytes() + step.tobytes())
    print("OK by hand")

if __name__ == "__main__":
    {"probe": lambda: probe(), "check": lambda: check(sys.argv[2], sys.argv[3]),
     "write": lambda: write(sys.argv[2])}[sys.argv[1]]()
`

// python runs the script with args and returns its output.
func python(t *testing.T, py, script string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, py, append([]string{script}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("python %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

// TestPythonInterop checks that Python reads the files Encode writes, and that
// DecodeBytes reads a file written the way PyTorch's safetensors writes one.
func TestPythonInterop(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping Python interop in short mode")
	}
	py := "/usr/bin/python3"
	if _, err := os.Stat(py); err != nil {
		if py, err = exec.LookPath("python3"); err != nil {
			t.Skip("skipping: no python3 found")
		}
	}
	dir := t.TempDir()
	script := filepath.Join(dir, "st.py")
	if err := os.WriteFile(script, []byte(pythonScript), 0o644); err != nil {
		t.Fatal(err)
	}
	var mods struct{ Numpy, Torch, Safetensors bool }
	probe := python(t, py, script, "probe")
	if err := json.Unmarshal([]byte(probe[strings.LastIndex(probe, "\n")+1:]), &mods); err != nil {
		t.Fatalf("probe output %q: %v", probe, err)
	}
	if !mods.Numpy {
		t.Skipf("skipping: %s cannot import numpy (modules: %+v), needed to parse safetensors by hand", py, mods)
	}
	t.Logf("python modules: %+v", mods)

	t.Run("python reads Go", func(t *testing.T) {
		f := sampleFile()
		f.Tensors = append(f.Tensors,
			Tensor{Name: "empty", Shape: []int{0, 3}, F32: []float32{}},
			Tensor{Name: "ünï", Shape: []int{1, 2, 1}, I32: []int32{-5, 6}})
		path := filepath.Join(dir, "go.safetensors")
		if err := WriteFile(path, f); err != nil {
			t.Fatal(err)
		}
		type tensorJSON struct {
			Name   string `json:"name"`
			DType  string `json:"dtype"`
			Shape  []int  `json:"shape"`
			Values any    `json:"values"`
		}
		var exp struct {
			Tensors  []tensorJSON      `json:"tensors"`
			Metadata map[string]string `json:"metadata"`
		}
		written, err := ReadFile(path, DecodeOptions{})
		if err != nil {
			t.Fatal(err)
		}
		exp.Metadata = written.Metadata
		for _, tn := range f.Tensors {
			tj := tensorJSON{Name: tn.Name, DType: tn.DType(), Shape: tn.Shape, Values: tn.I32}
			if tn.F32 != nil {
				tj.Values = tn.F32
			}
			exp.Tensors = append(exp.Tensors, tj)
		}
		b, err := json.Marshal(exp)
		if err != nil {
			t.Fatal(err)
		}
		expPath := filepath.Join(dir, "expected.json")
		if err := os.WriteFile(expPath, b, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Log(python(t, py, script, "check", path, expPath))
	})

	t.Run("Go reads python", func(t *testing.T) {
		path := filepath.Join(dir, "py.safetensors")
		t.Log(python(t, py, script, "write", path))
		if _, err := ReadFile(path, DecodeOptions{}); !errors.Is(err, ErrNoChecksum) {
			t.Errorf("strict ReadFile: err = %v, want ErrNoChecksum", err)
		}
		got, err := ReadFile(path, DecodeOptions{AllowUnchecked: true})
		if err != nil {
			t.Fatalf("ReadFile with AllowUnchecked: %v", err)
		}
		want := &File{
			Tensors: []Tensor{
				{Name: "w", Shape: []int{2, 3}, F32: []float32{0, 0.5, 1, 1.5, 2, 2.5}},
				{Name: "step", Shape: []int{}, I32: []int32{7}},
			},
			Metadata: map[string]string{"format": "pt"},
		}
		if err := sameFile(got, want); err != nil {
			t.Error(err)
		}
	})
}
