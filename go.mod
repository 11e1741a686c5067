module github.com/gantrain/gantrain

go 1.26.8

require (
	github.com/ebitengine/purego v0.11.3
	go.yaml.in/yaml/v3 v3.0.6
	gonum.org/v1/gonum v0.17.0
)

require (
	golang.org/x/sys v0.50.0 // indirect
	golang.org/x/term v0.48.0 // indirect
)
