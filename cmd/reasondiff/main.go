// Command reasondiff compares two reason logs, such as lwsgate's and the
// native reference program's for the same scenario:
//
//	reasondiff [-diffs] [-event-loop poll|libev] A.log B.log
//
// Lines other than reason-log lines are ignored. Timestamps are dropped,
// contexts and connections are renumbered by first appearance, and the
// reasons whose count and place depend on timing (EVENT_WAIT_CANCELLED) are
// set aside and only counted. Each connection's reasons are then shown side
// by side, with "<" for a reason only in A and ">" for one only in B.
//
// Exit status: 0 same, 1 different, 2 trouble (usage, unreadable file).
package main

import (
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/lwsgate/lwsgate/cmd/internal/reasonlog"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("reasondiff", flag.ContinueOnError)
	fs.SetOutput(stderr)
	onlyDiffs := fs.Bool("diffs", false, "show only the connections that differ")
	loop := fs.String("event-loop", "poll", "the `loop` both logs' programs ran libwebsockets on (poll or libev), which decides the timing rules")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: reasondiff [-diffs] [-event-loop poll|libev] A.log B.log")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *loop != "poll" && *loop != "libev" {
		fmt.Fprintf(stderr, "reasondiff: -event-loop %q: want poll or libev\n", *loop)
		return 2
	}
	rules := reasonlog.RulesFor(*loop)
	if fs.NArg() != 2 {
		fs.Usage()
		return 2
	}
	var logs [2]*reasonlog.Log
	for i, name := range fs.Args() {
		f, err := os.Open(name)
		if err != nil {
			fmt.Fprintln(stderr, "reasondiff:", err)
			return 2
		}
		lines, err := reasonlog.Parse(f)
		f.Close()
		if err != nil {
			fmt.Fprintf(stderr, "reasondiff: %s: %v\n", name, err)
			return 2
		}
		if len(lines) == 0 {
			fmt.Fprintf(stderr, "reasondiff: %s: no reason-log lines\n", name)
			return 2
		}
		logs[i] = reasonlog.Normalize(lines, rules)
	}
	n := reasonlog.Report(stdout, fs.Arg(0), fs.Arg(1), logs[0], logs[1], rules, *onlyDiffs)
	if n > 0 {
		fmt.Fprintf(stdout, "%d differences\n", n)
		return 1
	}
	fmt.Fprintln(stdout, "same")
	return 0
}
