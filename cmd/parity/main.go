// Command parity runs the reason-log parity scenarios: each scenario once
// (or -runs times) against lwsgate and against the native libwebsockets
// reference program (testdata/native), then compares their reason logs
// with the rules of cmd/internal/reasonlog. It exits 1 on any difference.
//
//	parity -lwsgate bin/lwsgate -native bin/lwsnative [-runs N] [-only NAME] [-v]
//	parity ... -markdown FILE   # also write the native sequences as Markdown
//
// With -runs N each program runs each scenario N times and every run must
// normalise to the same log as the first: that is the evidence that the
// rules set aside exactly the timing-dependent reasons.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/lwsgate/lwsgate/cmd/internal/reasonlog"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("parity", flag.ContinueOnError)
	fs.SetOutput(stderr)
	gate := fs.String("lwsgate", "bin/lwsgate", "lwsgate `binary`")
	native := fs.String("native", "bin/lwsnative", "native reference `binary`")
	runs := fs.Int("runs", 1, "run each scenario this many `times` per program and check the logs agree")
	only := fs.String("only", "", "run only the scenarios whose name contains this `text`")
	verbose := fs.Bool("v", false, "show every connection side by side, not only differences")
	md := fs.String("markdown", "", "write the native reason sequences of each scenario to this `file` (Markdown)")
	keep := fs.String("keep", "", "keep each run's raw log in this `directory`")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *runs < 1 {
		fmt.Fprintln(stderr, "parity: -runs must be at least 1")
		return 2
	}
	env, err := newEnv(*gate, *native)
	if err != nil {
		fmt.Fprintln(stderr, "parity:", err)
		return 2
	}
	defer env.close()
	if *keep != "" {
		if err := os.MkdirAll(*keep, 0o755); err != nil {
			fmt.Fprintln(stderr, "parity:", err)
			return 2
		}
	}

	failed := 0
	var doc bytes.Buffer
	for _, sc := range scenarios {
		if *only != "" && !strings.Contains(sc.name, *only) {
			continue
		}
		start := time.Now()
		var logs [2]*reasonlog.Log
		var unstable []string
		for i, p := range []*program{env.native, env.gate} {
			for n := 1; n <= *runs; n++ {
				raw, err := sc.run(env, p)
				if *keep != "" {
					_ = os.WriteFile(fmt.Sprintf("%s/%s.%s.%d.log", *keep, sc.name, p.name, n), raw, 0o644)
				}
				if err != nil {
					fmt.Fprintf(stdout, "FAIL %s (%s, run %d): %v\n%s\n", sc.name, p.name, n, err, tail(raw, 30))
					failed++
					break
				}
				lines, _ := reasonlog.Parse(bytes.NewReader(raw))
				l := reasonlog.Normalize(lines, reasonlog.DefaultRules)
				if n == 1 {
					logs[i] = l
					continue
				}
				if !reasonlog.Equal(logs[i], l) {
					var b strings.Builder
					reasonlog.Report(&b, p.name+" run 1", fmt.Sprintf("%s run %d", p.name, n), logs[i], l, reasonlog.DefaultRules, true)
					unstable = append(unstable, b.String())
				}
			}
		}
		if logs[0] == nil || logs[1] == nil {
			continue
		}
		var out strings.Builder
		n := reasonlog.Report(&out, "native ("+env.native.path+")", "lwsgate ("+env.gate.path+")", logs[0], logs[1], reasonlog.DefaultRules, !*verbose)
		switch {
		case n > 0 || len(unstable) > 0:
			failed++
			fmt.Fprintf(stdout, "FAIL %s: %d differences between native and lwsgate, %d unstable runs\n%s", sc.name, n, len(unstable), out.String())
			for _, u := range unstable {
				fmt.Fprint(stdout, u)
			}
		default:
			fmt.Fprintf(stdout, "ok   %-22s %d runs each, %d connections, %s\n", sc.name, *runs, len(logs[0].Conns)-1, time.Since(start).Round(time.Millisecond))
			if *verbose {
				fmt.Fprint(stdout, out.String())
			}
		}
		writeMarkdown(&doc, sc, logs[0])
	}
	if *md != "" {
		if err := os.WriteFile(*md, doc.Bytes(), 0o644); err != nil {
			fmt.Fprintln(stderr, "parity:", err)
			return 2
		}
	}
	if failed > 0 {
		fmt.Fprintf(stdout, "%d scenarios failed\n", failed)
		return 1
	}
	return 0
}

func tail(b []byte, n int) string {
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// writeMarkdown adds one scenario's native sequences to the README section.
func writeMarkdown(w io.Writer, sc scenario, l *reasonlog.Log) {
	fmt.Fprintf(w, "**%s**: %s\n\n", sc.name, sc.about)
	fmt.Fprintf(w, "| wsi | reasons |\n|---|---|\n")
	for id := 0; id < len(l.Conns)+1; id++ {
		if _, ok := l.Conns[id]; !ok {
			continue
		}
		what := sc.conns[id]
		if id == 0 {
			what = "context"
		}
		fmt.Fprintf(w, "| %d %s | %s |\n", id, what, l.Sequence(id))
	}
	fmt.Fprintln(w)
}
