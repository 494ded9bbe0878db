package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/tokenlease/tokenlease/client"
)

type stdio struct {
	in       io.Reader
	out, err io.Writer
}

// env is what every command gets: the parsed common flags, the SDK client
// (built after parsing), and the streams.
type env struct {
	stdio
	ctx    context.Context
	url    string
	key    string
	output string
	pool   string
	c      *client.Client
	printr printer
	opts   options // the command's own flags
}

// options hold the values of the commands' own flags.
type options struct {
	assign  client.AssignOptions
	leaseID int64
	pool    client.PoolSettings
	key     client.KeyRequest
	watch   client.EventsFilter
}

type command struct {
	name, args, help string
	flags            func(e *env, fs *flag.FlagSet) // the command's own flags; may be nil
	run              func(e *env, args []string) error
	nargs            []int // accepted numbers of positional arguments
}

const usageHead = `tokenctl: the command-line client of tokenlease.

Usage: tokenctl [flags] COMMAND [flags] [ARGS]

Flags (before or after the command):
  --url URL[,URL...]  the service (env TOKENLEASE_URL, default http://127.0.0.1:8080);
                      several URLs fail over to one another
  --key KEY           API key (env TOKENLEASE_KEY)
  --pool NAME         the pool (default "default")
  -o table|json       output format (default table)

Commands:
`

const usageTail = `
Exit codes:
  0 ok   1 usage or invalid request   2 not found (token, pool, key) or no free token
  3 conflict (lease mismatch, not assigned, pool full, pool not empty/protected, key exists)
  4 authentication or permission   5 unavailable or rate-limited   6 other
`

func usage(w io.Writer) {
	fmt.Fprint(w, usageHead)
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-40s %s\n", c.name+" "+c.args, c.help)
	}
	fmt.Fprint(w, usageTail)
}

// run is tokenctl: it returns the exit code.
func run(ctx context.Context, args []string, io stdio, getenv func(string) string) int {
	e := &env{stdio: io, ctx: ctx, url: getenv("TOKENLEASE_URL"), key: getenv("TOKENLEASE_KEY"), output: "table"}
	if e.url == "" {
		e.url = "http://127.0.0.1:8080"
	}
	global := flag.NewFlagSet("tokenctl", flag.ContinueOnError)
	global.SetOutput(io.err)
	global.Usage = func() { usage(io.err) }
	e.commonFlags(global)
	if err := global.Parse(args); err != nil {
		return exitUsage
	}
	args = global.Args()
	if len(args) == 0 || args[0] == "help" {
		usage(io.out)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	name := args[0]
	args = args[1:]
	if name == "pools" || name == "keys" { // two-word commands
		if len(args) == 0 {
			fmt.Fprintf(io.err, "tokenctl: %s needs a subcommand\n", name)
			return exitUsage
		}
		name, args = name+" "+args[0], args[1:]
	}
	i := slices.IndexFunc(commands(), func(c command) bool { return c.name == name })
	if i < 0 {
		fmt.Fprintf(io.err, "tokenctl: unknown command %q (see tokenctl help)\n", name)
		return exitUsage
	}
	cmd := commands()[i]
	err := e.runCommand(cmd, args)
	if err == nil {
		return exitOK
	}
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if ctx.Err() != nil && errors.Is(err, context.Canceled) {
		return exitOK // interrupted, e.g. a watch ended with Ctrl-C
	}
	fmt.Fprintln(io.err, "tokenctl:", err)
	return exitCode(err)
}

func (e *env) commonFlags(fs *flag.FlagSet) {
	fs.StringVar(&e.url, "url", e.url, "service URL(s), comma-separated")
	fs.StringVar(&e.key, "key", e.key, "API key")
	fs.StringVar(&e.pool, "pool", e.pool, "pool")
	fs.StringVar(&e.output, "o", e.output, "output: table or json")
}

func (e *env) runCommand(cmd command, args []string) error {
	fs := flag.NewFlagSet("tokenctl "+cmd.name, flag.ContinueOnError)
	fs.SetOutput(e.err)
	fs.Usage = func() {
		fmt.Fprintf(e.err, "Usage: tokenctl %s %s\n  %s\n", cmd.name, cmd.args, cmd.help)
		fs.PrintDefaults()
	}
	e.commonFlags(fs)
	if cmd.flags != nil {
		cmd.flags(e, fs)
	}
	// Flags may follow positional arguments: parse around them.
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return err
			}
			return usageError(err.Error())
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if !slices.Contains(cmd.nargs, len(pos)) {
		return usageError(fmt.Sprintf("usage: tokenctl %s %s", cmd.name, cmd.args))
	}
	switch e.output {
	case "table":
		e.printr = tablePrinter{e.out}
	case "json":
		e.printr = jsonPrinter{e.out}
	default:
		return usageError("-o must be table or json")
	}
	c, err := client.New(client.Options{BaseURLs: strings.Split(e.url, ","), APIKey: e.key, UserAgent: "tokenctl"})
	if err != nil {
		return usageError(err.Error())
	}
	e.c = c
	return cmd.run(e, pos)
}

// stderrIsTerminal reports whether progress may be drawn on e.err.
func (e *env) stderrIsTerminal() bool {
	f, ok := e.err.(*os.File)
	return ok && isTerminal(f)
}
