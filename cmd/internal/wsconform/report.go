package wsconform

import (
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// FamilyNames names the case families, as Autobahn's report does.
var FamilyNames = map[string]string{
	"1":  "Framing",
	"2":  "Pings/Pongs",
	"3":  "Reserved Bits",
	"4":  "Opcodes",
	"5":  "Fragmentation",
	"6":  "UTF-8 Handling",
	"7":  "Close Handling",
	"9":  "Limits/Performance",
	"12": "permessage-deflate",
	"13": "permessage-deflate offers",
}

// Counts are the outcomes of a set of results.
type Counts [5]int // indexed by Outcome

// Total is the number of results counted.
func (c Counts) Total() int { return c[0] + c[1] + c[2] + c[3] + c[4] }

// Families returns the counts per family, in family order.
func (r *Report) Families() (names []string, counts map[string]*Counts) {
	counts = map[string]*Counts{}
	for _, res := range r.Results {
		f := res.Case.Family()
		if counts[f] == nil {
			counts[f] = &Counts{}
			names = append(names, f)
		}
		counts[f][res.Outcome()]++
	}
	slices.SortFunc(names, func(a, b string) int {
		x, _ := strconv.Atoi(a)
		y, _ := strconv.Atoi(b)
		return x - y
	})
	return names, counts
}

// WriteTable writes an Autobahn-style report: the cases (all of them with
// verbose, else those not OK), the totals per family, every NON-STRICT
// verdict with its explanation, the known failures seen, and the problems.
func (r *Report) WriteTable(w io.Writer, title string, verbose bool) {
	fmt.Fprintf(w, "== %s\n\n", title)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "Case\tOutcome\tTime\tClosing\tDetail")
	for _, res := range r.Results {
		o := res.Outcome()
		if !verbose && o == OutcomeOK && !res.Closing.Dropped {
			continue
		}
		closing := res.Closing.Describe(r.Target)
		if closing == "" {
			closing = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", res.Case.ID, o, res.Duration.Round(time.Millisecond), closing, oneLine(res.Detail))
	}
	tw.Flush()
	r.writeClosing(w)

	fmt.Fprintln(w)
	names, counts := r.Families()
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "Family\t\tOK\tNON-STRICT\tFAILED\tKNOWN-FAILURE\tNOW-PASSES\tCases\t")
	var total Counts
	for _, f := range names {
		c := counts[f]
		for i := range total {
			total[i] += c[i]
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t\n", f, FamilyNames[f], c[0], c[1], c[2], c[3], c[4], c.Total())
	}
	fmt.Fprintf(tw, "all\t\t%d\t%d\t%d\t%d\t%d\t%d\t\n", total[0], total[1], total[2], total[3], total[4], total.Total())
	tw.Flush()

	var ns, kf []CaseResult
	for _, res := range r.Results {
		switch res.Outcome() {
		case OutcomeNonStrict:
			ns = append(ns, res)
		case OutcomeKnown:
			kf = append(kf, res)
		}
	}
	if len(ns) > 0 {
		fmt.Fprintf(w, "\nNON-STRICT verdicts (allowed by RFC 6455, not ideal):\n")
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		for _, res := range ns {
			fmt.Fprintf(tw, "  %s\t%s\n", res.Case.ID, oneLine(res.Detail))
		}
		tw.Flush()
	}
	if len(kf) > 0 {
		fmt.Fprintf(w, "\nKnown failures (KnownFailures in cmd/internal/wsconform/known.go):\n")
		for _, g := range groupKnown(kf) {
			fmt.Fprintf(w, "  %s: %s\n      fixed by: %s\n", strings.Join(g.ids, ", "), oneLine(g.k.Reason), oneLine(g.k.Fix))
		}
	}
	var lucky []CaseResult
	for _, res := range r.Results {
		if res.Known != nil && res.Known.Intermittent && res.Verdict != Failed {
			lucky = append(lucky, res)
		}
	}
	if len(lucky) > 0 {
		fmt.Fprintf(w, "\nIntermittent known failures that passed this run (not a problem):\n")
		for _, res := range lucky {
			fmt.Fprintf(w, "  %s  %s: %s\n", res.Case.ID, res.Verdict, oneLine(res.Known.Reason))
		}
	}
	probs := r.Problems()
	if len(probs) == 0 {
		fmt.Fprintf(w, "\nNo unexpected failures; no known failure passes.\n\n")
		return
	}
	fmt.Fprintf(w, "\nPROBLEMS (%d):\n", len(probs))
	for _, res := range probs {
		if res.Closing.Dropped {
			fmt.Fprintf(w, "  %s %s: %s\n", res.Case.ID, res.Closing.Describe(r.Target), closingRule(r.Target))
		}
		switch res.Outcome() {
		case OutcomeOK, OutcomeNonStrict, OutcomeKnown:
			continue
		case OutcomeStale:
			fmt.Fprintf(w, "  %s now passes (%s): remove its entry from KnownFailures (%s)\n", res.Case.ID, res.Verdict, res.Known.Fix)
			continue
		}
		fmt.Fprintf(w, "  %s FAILED: %s\n      %s\n", res.Case.ID, oneLine(res.Detail), res.Case.Desc)
	}
	fmt.Fprintln(w)
}

// writeClosing summarises the closing behaviour: how many links ended
// with a closing handshake, how long the implementation took at most to
// close TCP after it, and how many the peer had to close itself.
func (r *Report) writeClosing(w io.Writer) {
	var n, dropped int
	var slowest *CaseResult
	for i, res := range r.Results {
		c := res.Closing
		if !c.Measured {
			continue
		}
		n++
		if c.Dropped {
			dropped++
		} else if slowest == nil || c.After > slowest.Closing.After {
			slowest = &r.Results[i]
		}
	}
	if n == 0 {
		return
	}
	fmt.Fprintf(w, "\nClosing behaviour: %d links ended with a closing handshake", n)
	if slowest != nil {
		fmt.Fprintf(w, "; the implementation closed TCP within %s of it (slowest: %s)", closeTime(slowest.Closing.After), slowest.Case.ID)
	}
	if dropped > 0 {
		fmt.Fprintf(w, "; %d %s", dropped, droppedName(r.Target))
	}
	fmt.Fprintln(w, ".")
}

// closingRule says what the implementation should have done instead of
// leaving TCP open.
func closingRule(target Target) string {
	if target == TargetServer {
		return "the server should close TCP right after the closing handshake (RFC 6455 section 7.1.1)"
	}
	return "the client should close TCP once the server has (RFC 6455 section 7.1.1)"
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

type knownGroup struct {
	ids []string
	k   *Known
}

// groupKnown groups results by known-failure reason, in order of first
// appearance.
func groupKnown(rs []CaseResult) []knownGroup {
	var gs []knownGroup
	for _, r := range rs {
		i := slices.IndexFunc(gs, func(g knownGroup) bool { return g.k.Reason == r.Known.Reason && g.k.Fix == r.Known.Fix })
		if i < 0 {
			gs = append(gs, knownGroup{k: r.Known})
			i = len(gs) - 1
		}
		gs[i].ids = append(gs[i].ids, r.Case.ID)
	}
	return gs
}
