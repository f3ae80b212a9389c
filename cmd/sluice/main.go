// Command sluice is a streaming-aware reverse proxy.
//
//	sluice run      [--config config.yaml]   serve
//	sluice validate [--config config.yaml]   check a config file
//	sluice reload   [--config config.yaml]   make the running sluice reload it
//	sluice demo     [--listen 127.0.0.1:8443] try it with a built-in app
//	sluice version
//
// Exit codes: 0 ok, 1 config or start-up error, 2 usage.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
)

const (
	exitOK     = 0
	exitConfig = 1
	exitUsage  = 2
)

// version is set at build time with -ldflags "-X main.version=v1.2.3";
// otherwise it comes from the module's build info.
var version = ""

const usage = `sluice — a streaming-aware reverse proxy

Usage:
  sluice run      [--config FILE]   serve with FILE (default config.yaml)
  sluice validate [--config FILE]   check FILE; print every error as FILE:LINE:COL: key: problem
  sluice reload   [--config FILE]   check FILE, then make the running sluice reload it
                                    (POST /reload on its admin address, else SIGHUP to pid_file)
  sluice demo     [--listen ADDR]   run sluice and a demo app (SSE clock, slow CSV) on ADDR
  sluice version                    print the version

Exit codes: 0 ok, 1 config or start-up error, 2 usage.
`

func main() {
	os.Exit(runMain(os.Args[1:], os.Stdout, os.Stderr))
}

func runMain(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	cmd, args := args[0], args[1:]
	switch cmd {
	case "run":
		path, ok := configFlag("run", args, stderr)
		if !ok {
			return exitUsage
		}
		return run(path, stderr)
	case "validate":
		path, ok := configFlag("validate", args, stderr)
		if !ok {
			return exitUsage
		}
		return validate(path, stdout, stderr)
	case "reload":
		path, ok := configFlag("reload", args, stderr)
		if !ok {
			return exitUsage
		}
		return reloadCommand(path, stdout, stderr)
	case "demo":
		fs := newFlagSet("demo", stderr)
		listen := fs.String("listen", "127.0.0.1:8443", "address for sluice's https listener")
		if fs.Parse(args) != nil || fs.NArg() > 0 {
			return exitUsage
		}
		return runDemo(*listen, stdout, stderr)
	case "version", "--version", "-v":
		fmt.Fprintf(stdout, "sluice %s (%s)\n", getVersion(), runtime.Version())
		return exitOK
	case "help", "--help", "-h":
		fmt.Fprint(stdout, usage)
		return exitOK
	}
	fmt.Fprintf(stderr, "sluice: unknown command %q\n\n%s", cmd, usage)
	return exitUsage
}

func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("sluice "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

func configFlag(name string, args []string, stderr io.Writer) (string, bool) {
	fs := newFlagSet(name, stderr)
	path := fs.String("config", "config.yaml", "config file")
	if err := fs.Parse(args); err != nil {
		return "", false
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "sluice %s: unexpected argument %q\n", name, fs.Arg(0))
		return "", false
	}
	return *path, true
}

func getVersion() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "(devel)"
}

// printConfigError prints a config error: one line per problem.
func printConfigError(stderr io.Writer, err error) {
	var pe *os.PathError
	if errors.As(err, &pe) {
		fmt.Fprintf(stderr, "%s: %v\n", pe.Path, pe.Err)
		return
	}
	fmt.Fprintln(stderr, err)
}
