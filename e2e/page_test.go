//go:build linux

package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"html"
	"image"
	"image/png"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// Headless Chromium loads the live page of a run stopped through the control API
// (so every value is frozen): the page shows the sample grid, draws both charts with
// every history point, and the values it plots and tabulates equal /v1/status's. A
// screenshot of the page is a 1280×900 PNG that is not blank.
//
// GANTRAIN_SCREENSHOT_OUT=path trains longer first (3000 steps, the ring covered) and
// copies the screenshot to path (docs/img/status-page.png was made so).
func TestStatusPageInChromium(t *testing.T) {
	chromium := needTool(t, "chromium", "chromium")
	tmp := t.TempDir()
	minStep := int64(200)
	shotOut := os.Getenv("GANTRAIN_SCREENSHOT_OUT")
	if shotOut != "" {
		minStep = 3000
	}
	tokenBytes := make([]byte, 16)
	rand.Read(tokenBytes)
	token := hex.EncodeToString(tokenBytes)
	g := gantrain(t, []string{"GANTRAIN_CONTROL_TOKEN=" + token}, ringArgs(filepath.Join(tmp, "run"), "--steps", "1000000",
		"--log-every", "10", "--sample-every", "50", "--checkpoint-every", "0", "--listen", "127.0.0.1:0", "--linger", "120s")...)
	base := "http://" + g.addr()
	waitFor(t, 60*time.Second, "a sample grid and some history", func() bool {
		var st status
		getJSON(t, base+"/v1/status", &st)
		return st.SampleStep > 0 && st.Step >= minStep
	})

	// Stop the run: from here on status, history and the sample grid are frozen.
	req, _ := http.NewRequest(http.MethodPost, base+"/v1/stop", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /v1/stop: %s", resp.Status)
	}
	var st status
	waitFor(t, 10*time.Second, "state stopped", func() bool {
		getJSON(t, base+"/v1/status", &st)
		return st.State == "stopped"
	})
	var h history
	getJSON(t, base+"/v1/history", &h)
	n := len(h.Step)
	if n < 2 || h.Step[n-1] != st.ObservedStep || st.SampleStep != st.Step {
		t.Fatalf("after stop: %d history points ending at step %v, observed step %d, sample step %d, step %d",
			n, h.Step[max(n-1, 0):], st.ObservedStep, st.SampleStep, st.Step)
	}
	code, body := get(t, base+"/samples/latest.png")
	sample, err := png.Decode(bytes.NewReader(body))
	if code != http.StatusOK || err != nil {
		t.Fatalf("/samples/latest.png: %d, %v", code, err)
	}

	shot := filepath.Join(tmp, "page.png")
	dom := renderPage(t, chromium, base+"/", shot, tmp)
	t.Logf("page of step %d, %d history points", st.Step, n)

	els := parseElements(dom)
	el := func(id string) map[string]string {
		t.Helper()
		e, ok := els[id]
		if !ok {
			t.Fatalf("the page has no element #%s:\n%s", id, tail(dom, 3000))
		}
		return e
	}
	num := func(what, s string) float64 {
		t.Helper()
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			t.Fatalf("%s: %q is not a number", what, s)
		}
		return v
	}
	if got := num("body data-rendered-step", el("body")["data-rendered-step"]); got != float64(st.Step) || got < 1 {
		t.Errorf("body data-rendered-step %v, want the status step %d", got, st.Step)
	}
	img := el("samples")
	if got := num("img#samples data-loaded-step", img["data-loaded-step"]); got != float64(st.SampleStep) || got < 1 {
		t.Errorf("img#samples data-loaded-step %v, want the sample step %d", got, st.SampleStep)
	}
	if got := num("img#samples data-natural-width", img["data-natural-width"]); got != float64(sample.Bounds().Dx()) || got <= 0 {
		t.Errorf("img#samples data-natural-width %v, want the PNG's width %d", got, sample.Bounds().Dx())
	}
	want := map[string]float64{"d_loss": st.DLoss, "g_loss": st.GLoss, "d_real": st.DReal, "d_fake": st.DFake}
	charts := map[string][]string{"chart-loss": {"d_loss", "g_loss"}, "chart-dout": {"d_real", "d_fake"}}
	for chart, series := range charts {
		el(chart)
		for _, s := range series {
			pl, ok := els[chart+"/"+s]
			if !ok {
				t.Errorf("svg#%s has no polyline of %s", chart, s)
				continue
			}
			if c := num(s+" data-count", pl["data-count"]); c < 2 || int(c) != n {
				t.Errorf("%s polyline of %s: data-count %v, want all %d history points (≥ 2)", chart, s, c, n)
			}
			if ls := num(s+" data-last-step", pl["data-last-step"]); ls != float64(st.ObservedStep) {
				t.Errorf("%s polyline of %s ends at step %v, want the status's observed step %d", chart, s, ls, st.ObservedStep)
			}
			if v := num(s+" data-last", pl["data-last"]); v != want[s] {
				t.Errorf("%s polyline of %s ends at %v, /v1/status says %v", chart, s, v, want[s])
			}
		}
	}
	for s, w := range want {
		if v := num("td#v-"+s, el("v-" + s)["data-value"]); v != w {
			t.Errorf("td#v-%s data-value %v, /v1/status says %v", s, v, w)
		}
	}
	if v := num("td#v-step", el("v-step")["data-value"]); v != float64(st.Step) {
		t.Errorf("td#v-step data-value %v, want %d", v, st.Step)
	}
	if _, ok := els["v-device_memory"]; ok || st.DeviceMemoryTotal != 0 {
		t.Errorf("a CPU run's page has a device memory row (status: %d of %d bytes)", st.DeviceMemoryUsed, st.DeviceMemoryTotal)
	}

	// The screenshot: a PNG of the window's size with the page drawn on it.
	raw, err := os.ReadFile(shot)
	if err != nil {
		t.Fatalf("chromium wrote no screenshot: %v", err)
	}
	pic, err := png.Decode(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if b := pic.Bounds(); b.Dx() != 1280 || b.Dy() != 900 {
		t.Errorf("screenshot is %v, want 1280×900", b.Size())
	}
	colours, dCurve, gCurve := pixelStats(pic)
	if colours < 16 || dCurve < 50 || gCurve < 50 {
		t.Errorf("screenshot looks blank: %d distinct colours, %d pixels of the D curve's colour, %d of the G curve's", colours, dCurve, gCurve)
	}
	t.Logf("screenshot: %d distinct colours, %d/%d pixels near the D/G curve colours", colours, dCurve, gCurve)
	if shotOut != "" {
		if err := os.WriteFile(shotOut, raw, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot copied to %s", shotOut)
	}
}

// renderPage loads url in headless Chromium, lets its scripts run for 8 s of virtual
// time, writes a 1280×900 screenshot to shot and returns the DOM as Chromium
// serialised it. dir holds Chromium's profile.
func renderPage(t *testing.T, chromium, url, shot, dir string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-quic",
		"--user-data-dir="+filepath.Join(dir, "chromium-profile"), "--virtual-time-budget=8000",
		"--window-size=1280,900", "--screenshot="+shot, "--dump-dom", url)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	var dom, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &dom, &stderr
	started := time.Now()
	err := cmd.Run()
	syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // helpers it may leave behind
	if err != nil {
		t.Fatalf("chromium: %v\n%s", err, tail(stderr.String(), 3000))
	}
	t.Logf("chromium took %v", time.Since(started).Round(time.Millisecond))
	return dom.String()
}

var (
	tagRE  = regexp.MustCompile(`<([a-zA-Z][\w-]*)((?:\s+[^\s=>]+(?:="[^"]*")?)*)\s*/?>`)
	attrRE = regexp.MustCompile(`([^\s=>]+)(?:="([^"]*)")?`)
)

// parseElements indexes the start tags of a DOM that Chromium serialised (every
// attribute value in double quotes) by id, by tag name for body, and polylines by
// "svg-id/data-series".
func parseElements(dom string) map[string]map[string]string {
	out := map[string]map[string]string{}
	svg := ""
	for _, m := range tagRE.FindAllStringSubmatch(dom, -1) {
		attrs := map[string]string{}
		for _, a := range attrRE.FindAllStringSubmatch(m[2], -1) {
			attrs[a[1]] = html.UnescapeString(a[2])
		}
		switch tag := m[1]; {
		case tag == "body":
			out["body"] = attrs
		case tag == "svg":
			svg = attrs["id"]
		case tag == "polyline":
			out[svg+"/"+attrs["data-series"]] = attrs
		}
		if id := attrs["id"]; id != "" {
			out[id] = attrs
		}
	}
	return out
}

// pixelStats counts the distinct colours of img and its pixels close to the curve
// colours of the page (#c2410c for D, #1d4ed8 for G).
func pixelStats(img image.Image) (colours, d, g int) {
	seen := map[uint32]bool{}
	near := func(r, gg, b uint32, c [3]int) bool {
		dr, dg, db := int(r>>8)-c[0], int(gg>>8)-c[1], int(b>>8)-c[2]
		return dr*dr+dg*dg+db*db < 40*40
	}
	bd := img.Bounds()
	for y := bd.Min.Y; y < bd.Max.Y; y++ {
		for x := bd.Min.X; x < bd.Max.X; x++ {
			r, gg, b, _ := img.At(x, y).RGBA()
			seen[(r>>8)<<16|(gg>>8)<<8|b>>8] = true
			if near(r, gg, b, [3]int{0xc2, 0x41, 0x0c}) {
				d++
			}
			if near(r, gg, b, [3]int{0x1d, 0x4e, 0xd8}) {
				g++
			}
		}
	}
	return len(seen), d, g
}
