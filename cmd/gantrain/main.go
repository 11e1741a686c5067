// Command gantrain trains the generative adversarial nets of Goodfellow et al. (2014)
// and samples from them.
//
//	gantrain train [flags]             train (the paper's MNIST GAN by default)
//	gantrain sample --checkpoint F     draw samples from a checkpoint
//	gantrain eval --checkpoint F       Parzen log-likelihood and classifier scores
//	gantrain classifier train          train the evaluation's MNIST classifier
//	gantrain version                   print the version
//
// Every command takes --help. Bad flags or configs exit with status 2, failures
// during a run with status 1.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

// usageError marks errors that are the user's input (exit status 2).
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

const topUsage = `gantrain trains generative adversarial nets (Goodfellow et al., 2014).

Usage:
  gantrain train  [flags]   train a GAN (default: the paper's MNIST model on real MNIST)
  gantrain sample [flags]   draw samples from a checkpoint into a PNG grid or an .npy file
  gantrain eval   [flags]   Parzen log-likelihood, classifier score, Fréchet distance of a checkpoint
  gantrain classifier train [flags]   train the MNIST classifier behind 'eval --classifier'
  gantrain version          print version, backend and Go version

Run 'gantrain <command> --help' for the flags of a command.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run executes the command line and returns the exit status.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, topUsage)
		return 2
	}
	// The first SIGINT or SIGTERM asks the run to finish its step, checkpoint and
	// exit; unregistering then lets a second signal end the process at once.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		stop()
	}()
	var err error
	switch args[0] {
	case "train":
		err = trainCmd(ctx, args[1:], stdout, stderr)
	case "sample":
		err = sampleCmd(ctx, args[1:], stdout, stderr)
	case "eval":
		err = evalCmd(ctx, args[1:], stdout, stderr)
	case "classifier":
		err = classifierCmd(ctx, args[1:], stdout, stderr)
	case "version":
		fmt.Fprintf(stdout, "gantrain %s (backends: %s; %s)\n", version, backendsBuilt, runtime.Version())
		return 0
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, topUsage)
		return 0
	default:
		fmt.Fprintf(stderr, "gantrain: unknown command %q\n\n%s", args[0], topUsage)
		return 2
	}
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, new(usageError)):
		fmt.Fprintf(stderr, "gantrain %s: %v\n", args[0], err)
		return 2
	default:
		fmt.Fprintf(stderr, "gantrain %s: %v\n", args[0], err)
		return 1
	}
}

// newLogger logs in text or JSON to w.
func newLogger(w io.Writer, format string) (*slog.Logger, error) {
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, nil)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, nil)), nil
	}
	return nil, usagef("unknown --log-format %q (want text or json)", format)
}

// parseFlags parses a command's arguments: --help passes through as flag.ErrHelp,
// bad flags and stray arguments are usage errors (exit status 2).
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return err
		}
		return usageError{err}
	}
	if fs.NArg() > 0 {
		return usagef("unexpected arguments %q (all options are flags)", fs.Args())
	}
	return nil
}
