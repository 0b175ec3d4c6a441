// Package reasonlog reads, normalises and compares reason logs: the lines
// lwsgate and the native reference program (testdata/native) write for every
// libwebsockets callback,
//
//	[2026-11-24 10:05:47.123][DEBUG] cb ctx:1 wsi:7 reason:6 LWS_CALLBACK_RECEIVE
//
// Two runs of the same scenario are compared per connection: timestamps are
// dropped, contexts and connections are renumbered by first appearance, the
// reasons whose count or place depends on timing are set aside (see Rules),
// and then each connection's sequence of reasons must be the same.
package reasonlog

import (
	"bufio"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// Line is one callback of a reason log.
type Line struct {
	Ctx, WSI int    // as logged (0: a placeholder wsi)
	Reason   int    // the callback reason's value
	Name     string // its C name without LWS_CALLBACK_
}

var lineRE = regexp.MustCompile(`\bcb ctx:(\d+) wsi:(\d+) reason:(\d+)(?: LWS_CALLBACK_(\w+))?`)

// Parse picks the reason-log lines out of a log that may hold other lines.
func Parse(r io.Reader) ([]Line, error) {
	var out []Line
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		m := lineRE.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		ctx, _ := strconv.Atoi(m[1])
		wsi, _ := strconv.Atoi(m[2])
		reason, _ := strconv.Atoi(m[3])
		out = append(out, Line{Ctx: ctx, WSI: wsi, Reason: reason, Name: m[4]})
	}
	return out, sc.Err()
}

// Rules say which reasons are compared by count and place and which are
// set aside because timing decides them.
type Rules struct {
	// Timing maps a reason to why its count and place depend on timing.
	// Those lines are removed before the comparison and only counted.
	Timing map[int]string
	// After maps a pair of reasons {previous, reason} to why, directly
	// after previous on its connection, timing decides whether and how
	// often reason comes. Those lines (the whole run of them) are removed
	// and counted as Timing's are; reason is compared everywhere else.
	After map[[2]int]string
}

// DefaultRules are the rules measured for libwebsockets 4.1.6 (see
// README.md, "Reading the reason log", and make parity-evidence).
var DefaultRules = Rules{Timing: map[int]string{
	71: "EVENT_WAIT_CANCELLED: lws broadcasts it to every protocol of every vhost " +
		"whenever anything calls lws_cancel_service (lwsgate's own queue, lws itself, " +
		"the other side of a loopback test), so how many arrive and where depends on " +
		"thread timing",
	34: pollRule, 35: pollRule, 36: pollRule,
}}

// pollRule: libwebsockets 4.3 (not 4.1) reports its poll bookkeeping to
// protocol callbacks. ADD_POLL_FD and DEL_POLL_FD come once per socket and
// are compared; a mode change, wrapped in LOCK/UNLOCK, comes each time the
// events a socket waits for change, which during a TLS handshake depends on
// how the bytes arrive (on 4.3.5, https-createtoken agreed in one parity run
// and differed by two lock/change/unlock triples in the next).
const pollRule = "CHANGE_MODE_POLL_FD, LOCK_POLL, UNLOCK_POLL (libwebsockets 4.3): a mode " +
	"change per change of the events a socket waits for, which during a TLS handshake " +
	"depends on how the bytes arrive"

// LibevRules are DefaultRules for both programs on libwebsockets' libev
// loop, where two WRITEABLEs are timing's. lws' poll loop hands a
// descriptor's POLLIN and POLLOUT to one lws_service_fd; its libev plugin
// watches reading and writing with two watchers and services each on its
// own (lib/event-libs/libev/libev.c, lws_accept_cb, 4.1.6 and 4.3.5), read
// first when both are ready in one wait.
//
//   - After WS_SERVER_DROP_PROTOCOL or WS_CLIENT_DROP_PROTOCOL, lws keeps
//     POLLOUT on while it waits for the peer's answer to its close frame.
//     On poll the WRITEABLE always comes (POLLOUT is serviced first); on
//     libev, when the peer's close is in by the next wait, the read ends
//     the link and the write is never serviced. The native program had it
//     in 5 of 10 runs of ws-server-close and 8 of 10 of client-ws, lwsgate
//     in 10 of 10 and 7 of 10 (libwebsockets 4.1.6).
//   - A client's POLLOUT is still on from its handshake when the server's
//     101 arrives (strace: no EPOLL_CTL_MOD between the request and the
//     reply, which epoll reports with EPOLLIN|EPOLLOUT). On libev the read
//     (ESTABLISHED_CLIENT_HTTP ... CLIENT_ESTABLISHED) is followed by a
//     CLIENT_WRITEABLE in the same pass, asked for or not. The native
//     client asks for one at CLIENT_ESTABLISHED and writes its message in
//     it. lwsgate's dial sends once Dial has returned, from another
//     goroutine, and the Send asks for a WRITEABLE of its own: when the
//     unasked one comes first it writes nothing, or it writes the message
//     the Send has just queued and the Send's own comes with nothing to
//     write, before the first CLIENT_RECEIVE or after it. Either way two
//     CLIENT_WRITEABLEs in a row where the native program has one (6 of
//     10 runs of client-ws on 4.1.6; after the RECEIVE in 1 of 60 dials on
//     4.3.5). On poll that POLLOUT never reaches the user: lwsgate logs
//     CLIENT_ESTABLISHED, EVENT_WAIT_CANCELLED, CLIENT_WRITEABLE in 10 of
//     10 runs.
var LibevRules = Rules{Timing: DefaultRules.Timing, After: map[[2]int]string{
	{78, 11}: closeAckRule,
	{80, 10}: closeAckRule,
	{10, 10}: clientWriteableRule,
}}

const (
	closeAckRule = "WRITEABLE after WS_*_DROP_PROTOCOL on the libev loop: lws asks to write while " +
		"it waits for the peer's close; libev services the socket's reading and writing one at a " +
		"time, so when the peer's close is in by then, the link ends before the write is serviced"
	clientWriteableRule = "CLIENT_WRITEABLE right after CLIENT_WRITEABLE on the libev loop: the " +
		"handshake's POLLOUT is still on when the 101 arrives, so libev services a write right " +
		"after CLIENT_ESTABLISHED, asked for or not; one of the two a Send from another thread " +
		"then brings finds nothing to write"
)

// RulesFor returns the rules for both programs on the event loop named
// loop: LibevRules for "libev", else DefaultRules.
func RulesFor(loop string) Rules {
	if loop == "libev" {
		return LibevRules
	}
	return DefaultRules
}

// Log is a normalised reason log. It is built by Normalize and only read
// after; reading from several goroutines is safe.
type Log struct {
	// Conns holds the reasons of each connection in order, by renumbered
	// id: 0 is the placeholder wsi (context and vhost events), 1... are
	// connections in order of first appearance.
	Conns map[int][]Line
	// SetAside counts the lines removed by the Timing rules, by reason.
	SetAside map[int]int
	// SetAsideAfter counts the lines removed by the After rules, by
	// {previous, reason}.
	SetAsideAfter map[[2]int]int
	// Total is the number of reason lines read.
	Total int
}

// Normalize renumbers contexts and connections by first appearance, keeps
// the order of each connection's reasons and sets the timing-dependent
// reasons aside.
func Normalize(lines []Line, rules Rules) *Log {
	l := &Log{Conns: map[int][]Line{}, SetAside: map[int]int{}, SetAsideAfter: map[[2]int]int{}, Total: len(lines)}
	ctxs, wsis := map[int]int{}, map[[2]int]int{}
	for _, ln := range lines {
		if _, ok := rules.Timing[ln.Reason]; ok {
			l.SetAside[ln.Reason]++
			continue
		}
		c, ok := ctxs[ln.Ctx]
		if !ok {
			c = len(ctxs) + 1
			ctxs[ln.Ctx] = c
		}
		w := 0
		if ln.WSI != 0 {
			key := [2]int{c, ln.WSI}
			if w, ok = wsis[key]; !ok {
				w = len(wsis) + 1
				wsis[key] = w
			}
		}
		if conn := l.Conns[w]; len(conn) > 0 {
			pair := [2]int{conn[len(conn)-1].Reason, ln.Reason}
			if _, ok := rules.After[pair]; ok {
				l.SetAsideAfter[pair]++
				continue
			}
		}
		ln.Ctx, ln.WSI = c, w
		l.Conns[w] = append(l.Conns[w], ln)
	}
	return l
}

// Reasons returns the reason values of one connection.
func (l *Log) Reasons(conn int) []int {
	var r []int
	for _, ln := range l.Conns[conn] {
		r = append(r, ln.Reason)
	}
	return r
}

// ids returns the connection ids of a and b, in order.
func ids(a, b *Log) []int {
	seen := map[int]bool{}
	var out []int
	for _, l := range []*Log{a, b} {
		for id := range l.Conns {
			if !seen[id] {
				seen[id] = true
				out = append(out, id)
			}
		}
	}
	sort.Ints(out)
	return out
}

// Equal reports whether a and b have the same reasons per connection.
func Equal(a, b *Log) bool {
	for _, id := range ids(a, b) {
		ra, rb := a.Reasons(id), b.Reasons(id)
		if len(ra) != len(rb) {
			return false
		}
		for i := range ra {
			if ra[i] != rb[i] {
				return false
			}
		}
	}
	return true
}

// op is one row of a per-connection diff.
type op struct {
	a, b *Line // nil on the side that lacks it
}

// diff aligns two sequences on their longest common subsequence.
func diff(a, b []Line) []op {
	n, m := len(a), len(b)
	lcs := make([][]int, n+1)
	for i := range lcs {
		lcs[i] = make([]int, m+1)
	}
	for i := n - 1; i >= 0; i-- {
		for j := m - 1; j >= 0; j-- {
			if a[i].Reason == b[j].Reason {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	var ops []op
	i, j := 0, 0
	for i < n || j < m {
		switch {
		case i < n && j < m && a[i].Reason == b[j].Reason:
			ops = append(ops, op{&a[i], &b[j]})
			i++
			j++
		case j < m && (i == n || lcs[i][j+1] >= lcs[i+1][j]):
			ops = append(ops, op{nil, &b[j]})
			j++
		default:
			ops = append(ops, op{&a[i], nil})
			i++
		}
	}
	return ops
}

func label(l *Line) string {
	if l == nil {
		return ""
	}
	if l.Name == "" {
		return strconv.Itoa(l.Reason)
	}
	return fmt.Sprintf("%d %s", l.Reason, l.Name)
}

// Report writes a side-by-side comparison of a and b (named nameA and
// nameB) to w: every connection, its reasons in two columns, differences
// marked "<" (only in a), ">" (only in b). It ends with the set-aside
// timing-dependent reasons and their rules. It returns the number of
// differing rows.
func Report(w io.Writer, nameA, nameB string, a, b *Log, rules Rules, onlyDiffs bool) int {
	const col = 44
	diffs := 0
	fmt.Fprintf(w, "%-*s   %s\n", col, nameA, nameB)
	for _, id := range ids(a, b) {
		ops := diff(a.Conns[id], b.Conns[id])
		nd := 0
		for _, o := range ops {
			if o.a == nil || o.b == nil {
				nd++
			}
		}
		diffs += nd
		if onlyDiffs && nd == 0 {
			continue
		}
		title := fmt.Sprintf("wsi %d", id)
		if id == 0 {
			title = "wsi 0 (context, vhosts, placeholders)"
		}
		status := "same"
		if nd > 0 {
			status = fmt.Sprintf("%d differences", nd)
		}
		fmt.Fprintf(w, "-- %s: %s\n", title, status)
		for _, o := range ops {
			mark := " "
			switch {
			case o.b == nil:
				mark = "<"
			case o.a == nil:
				mark = ">"
			}
			fmt.Fprintf(w, "   %-*s %s %s\n", col-3, label(o.a), mark, label(o.b))
		}
	}
	var set []int
	for r := range rules.Timing {
		if a.SetAside[r] > 0 || b.SetAside[r] > 0 {
			set = append(set, r)
		}
	}
	sort.Ints(set)
	for _, r := range set {
		fmt.Fprintf(w, "-- set aside (timing-dependent): reason %d x%d in %s, x%d in %s: %s\n",
			r, a.SetAside[r], nameA, b.SetAside[r], nameB, rules.Timing[r])
	}
	var pairs [][2]int
	for p := range rules.After {
		if a.SetAsideAfter[p] > 0 || b.SetAsideAfter[p] > 0 {
			pairs = append(pairs, p)
		}
	}
	sort.Slice(pairs, func(i, j int) bool { return pairs[i][0] < pairs[j][0] })
	for _, p := range pairs {
		fmt.Fprintf(w, "-- set aside (timing-dependent): reason %d after %d x%d in %s, x%d in %s: %s\n",
			p[1], p[0], a.SetAsideAfter[p], nameA, b.SetAsideAfter[p], nameB, rules.After[p])
	}
	return diffs
}

// Sequence renders one connection's reasons as "17 FILTER_NETWORK_CONNECTION, 29 WSI_CREATE, ...".
func (l *Log) Sequence(conn int) string {
	var parts []string
	for i := range l.Conns[conn] {
		parts = append(parts, label(&l.Conns[conn][i]))
	}
	return strings.Join(parts, ", ")
}
