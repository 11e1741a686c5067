package e2e

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// The README's main command builds the binary and runs it. With `go run`, a SIGTERM
// to the go wrapper orphaned the trainer (which kept its port) and Ctrl-C made `go run`
// exit 1 though gantrain exited 0; the binary itself handles both (signals_test.go).
func TestReadmeMainCommandRunsTheBinary(t *testing.T) {
	raw, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	section := regexp.MustCompile("(?s)## The two commands.*?```sh\n(.*?)```").FindSubmatch(raw)
	if section == nil {
		t.Fatal(`README.md has no "## The two commands" section with a sh block`)
	}
	var cmds []string
	for _, line := range strings.Split(string(section[1]), "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			cmds = append(cmds, line)
		}
	}
	if len(cmds) != 2 {
		t.Fatalf("the two commands: %q", cmds)
	}
	main, tests := cmds[0], cmds[1]
	if strings.Contains(main, "go run") || !strings.Contains(main, "go build -tags nocuda -o gantrain ./cmd/gantrain") ||
		!strings.HasSuffix(main, "./gantrain train") {
		t.Errorf("main command %q: want it to build ./gantrain, then run ./gantrain train", main)
	}
	if tests != "go test -tags nocuda ./..." {
		t.Errorf("test command %q", tests)
	}
}
