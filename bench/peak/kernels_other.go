//go:build !amd64

package main

func kernels() []kernel { return nil }
