//go:build nocuda

package main

import (
	"errors"
	"strings"
	"testing"

	"github.com/gantrain/gantrain/config"
)

func TestNoCUDAInThisBuild(t *testing.T) {
	for _, dev := range []string{"cuda", "cuda:1"} {
		c := config.Default().Backend
		c.Device, c.BLAS = dev, "go"
		b, err := openBackend(c, nil)
		var ue usageError
		if b != nil || !errors.As(err, &ue) || !strings.Contains(err.Error(), "-tags nocuda") ||
			!strings.Contains(err.Error(), "NVIDIA GPU") || !strings.Contains(err.Error(), dev) {
			t.Errorf("openBackend(%q) = %v, %v; want a usage error about the nocuda build", dev, b, err)
		}
	}
	c := config.Default().Backend
	c.BLAS = "go"
	b, err := openBackend(c, nil)
	if err != nil || b.Name() != "cpu" {
		t.Fatalf("openBackend(cpu) = %v, %v", b, err)
	}
	b.Close()
}
