package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/lwsgate/lwsgate/lws"
	"github.com/lwsgate/lwsgate/lws/gateway"
)

// The admin commands' actions (see admin.go): each asks the admin API and
// prints its answer as a table, or as it came with --json.

func setupLinks(fs *flag.FlagSet) func(*adminCLI, []string) error {
	q := map[string]*string{
		"type":    fs.String("type", "", "only links of this `type`: tcplisten, httplisten, tcpconnect, httpconnect"),
		"user":    fs.String("user", "", "only links of this `user`"),
		"channel": fs.String("channel", "", "only links subscribed to this `channel`"),
		"node":    fs.String("node", "", "only links held by this `node` (lwsgate nodes)"),
	}
	return func(a *adminCLI, _ []string) error {
		query := url.Values{}
		for k, v := range q {
			if *v != "" {
				query.Set(k, *v)
			}
		}
		return listing(a, "links", "/v1/api/links", query,
			[]string{"ID", "TYPE", "LISTENER", "REMOTE", "USER", "AGE", "IDLE", "IN", "OUT", "QUEUED", "CHANNELS"},
			func(l gateway.LinkInfo) []string {
				return []string{fmt.Sprint(l.ID), l.Type, l.Listener, l.Remote, l.User, humanAge(a.now.Sub(l.Opened)), humanAge(a.now.Sub(l.LastActivity)),
					traffic(l.MessagesIn, l.BytesIn), traffic(l.MessagesOut, l.BytesOut), humanBytes(l.Queued), strings.Join(l.Channels, ",")}
			})
	}
}

// listing asks for a listing and prints it as a table, one row an item,
// or "no NOUN".
func listing[T any](a *adminCLI, noun, path string, query url.Values, header []string, row func(T) []string) error {
	var items []T
	if printed, err := a.get(noun, path, query, &items); printed || err != nil {
		return err
	}
	if len(items) == 0 {
		fmt.Fprintln(a.stdout, "no "+noun)
		return nil
	}
	t := newTable(a.stdout, header...)
	for _, it := range items {
		t.row(row(it)...)
	}
	t.flush()
	return nil
}

func plural(n int64, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// traffic is messages and bytes one way: "12/1.5 KiB".
func traffic(msgs, bytes int64) string { return fmt.Sprintf("%d/%s", msgs, humanBytes(bytes)) }

func setupLink(*flag.FlagSet) func(*adminCLI, []string) error {
	return func(a *adminCLI, args []string) error {
		id, err := linkID(args[0])
		if err != nil {
			return err
		}
		var l gateway.LinkInfo
		if printed, err := a.get("link "+args[0], fmt.Sprintf("/v1/api/links/%d", id), nil, &l); printed || err != nil {
			return err
		}
		tw := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
		kv := func(k, v string) {
			if v != "" {
				fmt.Fprintf(tw, "%s\t%s\n", k, v)
			}
		}
		kv("id", fmt.Sprint(l.ID))
		kv("type", l.Type)
		kv("listener", l.Listener)
		kv("remote", l.Remote)
		kv("path", l.Path)
		kv("url", l.URL)
		kv("user", l.User)
		kv("opened", fmt.Sprintf("%s (%s ago)", l.Opened.Local().Format("2006-01-02 15:04:05.000"), humanAge(a.now.Sub(l.Opened))))
		kv("last activity", fmt.Sprintf("%s (%s ago)", l.LastActivity.Local().Format("2006-01-02 15:04:05.000"), humanAge(a.now.Sub(l.LastActivity))))
		kv("in", fmt.Sprintf("%s, %s", plural(l.MessagesIn, "message"), humanBytes(l.BytesIn)))
		kv("out", fmt.Sprintf("%s, %s", plural(l.MessagesOut, "message"), humanBytes(l.BytesOut)))
		kv("queued", humanBytes(l.Queued))
		kv("channels", strings.Join(l.Channels, ", "))
		return tw.Flush()
	}
}

// traceEntry is one callback of GET /v1/api/links/{id}/trace.
type traceEntry struct {
	Time   time.Time `json:"time"`
	Reason int       `json:"reason"`
	Name   string    `json:"name"`
}

func setupTrace(fs *flag.FlagSet) func(*adminCLI, []string) error {
	follow := fs.Bool("follow", false, "print new callbacks as they come until the link closes, then how it closed")
	interval := fs.Duration("interval", 250*time.Millisecond, "with --follow, ask for new callbacks this `often`")
	return func(a *adminCLI, args []string) error {
		id, err := linkID(args[0])
		if err != nil {
			return err
		}
		if *interval <= 0 {
			return usagef("--interval %v: must be positive", *interval)
		}
		tr := &tracer{a: a, id: id, what: "link " + args[0]}
		if *follow {
			return tr.follow(*interval)
		}
		if a.json {
			_, err := a.call(tr.what, "GET", fmt.Sprintf("/v1/api/links/%d/trace", id), "", nil, nil)
			return err
		}
		return tr.poll()
	}
}

// tracer prints a link's trace, and with follow the callbacks added
// since the last poll. The trace is the link's last log.link_trace
// callbacks, oldest first; a callback is new if it is later than the
// last one printed, or at the same microsecond beyond those printed.
type tracer struct {
	a      *adminCLI
	id     uint64
	what   string
	polled bool
	last   time.Time // of the last callback printed
	atLast int       // callbacks printed at time last
}

// poll asks for the trace once and prints what is new (with --json, one
// JSON object a line). Once the link has gone it returns the 410's
// *apiError, which says how it closed.
func (tr *tracer) poll() error {
	a := tr.a
	asJSON := a.json
	a.json = false // printed here, entry by entry
	body, err := a.call(tr.what, "GET", fmt.Sprintf("/v1/api/links/%d/trace", tr.id), "", nil, nil)
	a.json = asJSON
	if err != nil {
		return err
	}
	var ans struct{ Reasons []traceEntry }
	if err := json.Unmarshal(body, &ans); err != nil {
		return fmt.Errorf("%s: the answer is not the API's: %v", tr.what, err)
	}
	var fresh []traceEntry
	seen := 0
	for _, e := range ans.Reasons {
		switch {
		case e.Time.After(tr.last):
			fresh = append(fresh, e)
		case e.Time.Equal(tr.last):
			if seen++; seen > tr.atLast {
				fresh = append(fresh, e)
			}
		}
	}
	if tr.polled && len(ans.Reasons) > 0 && ans.Reasons[0].Time.After(tr.last) && !a.json {
		fmt.Fprintf(a.stdout, "... callbacks may be missing here: the trace keeps the last %d\n", len(ans.Reasons))
	}
	prev := tr.last
	for _, e := range fresh {
		if a.json {
			b, _ := json.Marshal(e)
			fmt.Fprintf(a.stdout, "%s\n", b)
			continue
		}
		delta := ""
		if !prev.IsZero() {
			delta = "+" + e.Time.Sub(prev).String()
		}
		fmt.Fprintf(a.stdout, "%s  %10s  %s (%d)\n", e.Time.Local().Format("2006-01-02 15:04:05.000000"), delta, e.Name, e.Reason)
		prev = e.Time
	}
	if len(fresh) > 0 {
		tr.last, tr.atLast = fresh[len(fresh)-1].Time, 0
		for _, e := range ans.Reasons {
			if e.Time.Equal(tr.last) {
				tr.atLast++
			}
		}
	}
	tr.polled = true
	return nil
}

// follow polls until the link has gone, then prints how it closed. A
// link gone before the first poll is an error (exit 4); one that closes
// while followed is the end of a successful follow.
func (tr *tracer) follow(interval time.Duration) error {
	a := tr.a
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		err := tr.poll()
		var ae *apiError
		if errors.As(err, &ae) && ae.Status == 410 && tr.polled {
			if a.json {
				_, _ = a.stdout.Write(ae.Body)
				return nil
			}
			if c := ae.Closed; c != nil {
				fmt.Fprintf(a.stdout, "link %d closed: %s by the %s at %s\n", tr.id, closeText(c.Code, c.Reason), c.By,
					c.At.Local().Format("2006-01-02 15:04:05.000"))
			} else {
				fmt.Fprintf(a.stdout, "link %d closed (the gateway no longer knows how)\n", tr.id)
			}
			return nil
		}
		if err != nil {
			return err
		}
		select {
		case <-tick.C:
		case <-a.ctx.Done():
			return nil // interrupted: the end of following
		}
	}
}

func setupSend(fs *flag.FlagSet) func(*adminCLI, []string) error {
	binary := fs.Bool("binary", false, "send a binary message (default: text)")
	return func(a *adminCLI, args []string) error {
		id, err := linkID(args[0])
		if err != nil {
			return err
		}
		msg, err := a.message(args[1])
		if err != nil {
			return err
		}
		q, ctype := url.Values{}, "text/plain"
		if *binary {
			q.Set("type", "binary")
			ctype = "application/octet-stream"
		}
		if _, err := a.call("link "+args[0], "POST", fmt.Sprintf("/v1/api/links/%d/send", id), ctype, msg, q); err != nil || a.json {
			return err
		}
		fmt.Fprintf(a.stdout, "queued %s for link %d\n", humanBytes(int64(len(msg))), id)
		return nil
	}
}

func setupClose(*flag.FlagSet) func(*adminCLI, []string) error {
	return func(a *adminCLI, args []string) error {
		id, err := linkID(args[0])
		if err != nil {
			return err
		}
		code, err := strconv.Atoi(args[1])
		if err != nil || !lws.StatusCode(code).Sendable() {
			return usagef("close code %q: want one that may be sent: 1000-1003, 1007-1014, 3000-4999", args[1])
		}
		req := map[string]any{"code": code}
		if len(args) == 3 {
			if len(args[2]) > 123 {
				return usagef("close reason: %d bytes, at most 123 fit in a close frame", len(args[2]))
			}
			req["reason"] = args[2]
		}
		body, _ := json.Marshal(req)
		if _, err := a.call("link "+args[0], "POST", fmt.Sprintf("/v1/api/links/%d/close", id), "application/json", body, nil); err != nil || a.json {
			return err
		}
		fmt.Fprintf(a.stdout, "closing link %d with %s\n", id, closeText(code, strings.Join(args[2:], "")))
		return nil
	}
}

func setupSubscribe(fs *flag.FlagSet) func(*adminCLI, []string) error {
	since := fs.String("since", "", "on a channel with a history, join at this position, `OFFSET:EPOCH` (a subscribed reply's or a publish's): the link is sent what it missed since")
	return func(a *adminCLI, args []string) error {
		id, err := linkID(args[0])
		if err != nil {
			return err
		}
		req := map[string]any{"channel": args[1]}
		if *since != "" {
			p, err := parsePosition(*since)
			if err != nil {
				return err
			}
			req["since"] = p
		}
		body, _ := json.Marshal(req)
		ans, err := a.call("link "+args[0], "POST", fmt.Sprintf("/v1/api/links/%d/subscribe", id), "application/json", body, nil)
		if err != nil || a.json {
			return err
		}
		var res struct {
			Recovered *bool // only on a channel with a history
			gateway.Position
		}
		if err := json.Unmarshal(ans, &res); err != nil {
			return fmt.Errorf("subscribe: the answer is not the API's: %v", err)
		}
		switch {
		case res.Recovered == nil:
			fmt.Fprintf(a.stdout, "link %d subscribed to %s\n", id, args[1])
		case *since == "":
			fmt.Fprintf(a.stdout, "link %d subscribed to %s at offset %d (epoch %s)\n", id, args[1], res.Offset, res.Epoch)
		case *res.Recovered:
			fmt.Fprintf(a.stdout, "link %d subscribed to %s at offset %d (epoch %s): recovered, sent what it missed\n", id, args[1], res.Offset, res.Epoch)
		default:
			fmt.Fprintf(a.stdout, "link %d subscribed to %s at offset %d (epoch %s): not recovered, the history was trimmed or its epoch changed\n",
				id, args[1], res.Offset, res.Epoch)
		}
		return nil
	}
}

// parsePosition parses --since's OFFSET:EPOCH.
func parsePosition(s string) (gateway.Position, error) {
	off, epoch, _ := strings.Cut(s, ":")
	n, err := strconv.ParseUint(off, 10, 64)
	if err != nil || epoch == "" {
		return gateway.Position{}, usagef("--since %q: want OFFSET:EPOCH, as a subscribed reply or a publish gives them (42:9f3c...)", s)
	}
	return gateway.Position{Offset: n, Epoch: epoch}, nil
}

func setupUnsubscribe(*flag.FlagSet) func(*adminCLI, []string) error {
	return func(a *adminCLI, args []string) error {
		id, err := linkID(args[0])
		if err != nil {
			return err
		}
		body, _ := json.Marshal(map[string]string{"channel": args[1]})
		if _, err := a.call("link "+args[0], "POST", fmt.Sprintf("/v1/api/links/%d/unsubscribe", id), "application/json", body, nil); err != nil || a.json {
			return err
		}
		fmt.Fprintf(a.stdout, "link %d unsubscribed from %s\n", id, args[1])
		return nil
	}
}

func setupPublish(fs *flag.FlagSet) func(*adminCLI, []string) error {
	binary := fs.Bool("binary", false, "publish a binary message (default: text)")
	return func(a *adminCLI, args []string) error {
		msg, err := a.message(args[1])
		if err != nil {
			return err
		}
		req := map[string]any{"channel": args[0], "data": string(msg)}
		if *binary {
			req = map[string]any{"channel": args[0], "data_base64": msg} // encoding/json writes []byte as base64
		}
		body, _ := json.Marshal(req)
		ans, err := a.call("channel "+args[0], "POST", "/v1/api/publish", "application/json", body, nil)
		if err != nil || a.json {
			return err
		}
		var res gateway.PublishResult
		if err := json.Unmarshal(ans, &res); err != nil {
			return fmt.Errorf("publish: the answer is not the API's: %v", err)
		}
		if res.Position != nil { // a channel with a history: stored, then delivered by every node
			fmt.Fprintf(a.stdout, "published %s to %s: stored at offset %d (epoch %s)\n", humanBytes(int64(len(msg))), args[0], res.Offset, res.Epoch)
			return nil
		}
		fmt.Fprintf(a.stdout, "published %s to %s: delivered to %d, failed %d\n", humanBytes(int64(len(msg))), args[0], res.Delivered, res.Failed)
		return nil
	}
}

func setupChannels(*flag.FlagSet) func(*adminCLI, []string) error {
	return func(a *adminCLI, _ []string) error {
		return listing(a, "channels", "/v1/api/channels", nil, []string{"CHANNEL", "MEMBERS", "USERS"},
			func(c gateway.ChannelInfo) []string {
				return []string{c.Name, fmt.Sprint(c.Members), fmt.Sprint(c.Users)}
			})
	}
}

func setupRoutes(*flag.FlagSet) func(*adminCLI, []string) error {
	return func(a *adminCLI, _ []string) error {
		return listing(a, "routes", "/v1/api/routes", nil, []string{"LINK", "PEER", "DEPTH"},
			func(r gateway.Route) []string {
				return []string{fmt.Sprint(r.Node), fmt.Sprint(r.Peer), fmt.Sprint(r.Depth)}
			})
	}
}

func setupNodes(*flag.FlagSet) func(*adminCLI, []string) error {
	return func(a *adminCLI, _ []string) error {
		return listing(a, "nodes", "/v1/api/nodes", nil, []string{"NODE", "READY", "WORKERS", "LINKS", "UP", "VERSION", "LIBWEBSOCKETS"},
			func(n gateway.NodeInfo) []string {
				name, ready := n.Name, "yes"
				if n.Self {
					name += " *" // the node that answered
				}
				if !n.Ready {
					ready = "no"
				}
				return []string{name, ready, fmt.Sprint(n.Workers), fmt.Sprint(n.Links), humanAge(a.now.Sub(n.Started)), n.Version, n.Libwebsockets}
			})
	}
}
