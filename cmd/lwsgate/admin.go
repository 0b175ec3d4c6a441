package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/lwsgate/lwsgate/lws/gateway"
)

// The admin commands (links, link, trace, send, close, subscribe,
// unsubscribe, publish, channels, routes, nodes) are a plain client of a
// running gateway's admin API (lws/gateway/openapi.yaml), with the
// standard library's HTTP client: they speak to one local HTTP endpoint
// and need nothing of libwebsockets, so they start no lws context.
//
//	lwsgate links --channel room1
//	lwsgate trace 12 --follow
//	lwsgate close 12 4001 "kicked"
//
// Tables are for people; --json prints the API's JSON as it came (also
// for an error answer), for scripts, which read the exit code.

// Exit codes of the admin commands.
const (
	exitOK          = 0
	exitFailed      = 1 // anything else: the gateway's 5xx, an answer that is not the API's
	exitUsage       = 2 // bad arguments or flags, or a request the gateway calls malformed (400)
	exitNotFound    = 3 // 404: no link was ever issued that id
	exitGone        = 4 // 410: the link has closed
	exitRefused     = 5 // 401/403: the admin token; 409: not for this link; 429: its send queue is full
	exitUnreachable = 6 // the admin API did not answer: connection refused, timeout, bad host
)

// exitCodesHelp is the exit code table of lwsgate help.
const exitCodesHelp = `Exit codes of the admin commands:
  0  done
  1  failed otherwise (the gateway's 5xx, an answer that is not the API's)
  2  usage: bad arguments or flags, or a request the gateway calls malformed (400)
  3  not found: no link was ever issued that id (404)
  4  gone: the link has closed (410); the error says with which code, by whom, when
  5  refused: wrong or missing admin token (401, 403), an operation not for that
     link (409: an HTTP link; traces off), its send queue full (429)
  6  unreachable: nothing answered at --admin (connection refused, timeout)
`

// adminCommand is one admin subcommand.
type adminCommand struct {
	name    string
	args    string // the positional arguments, for usage
	summary string
	nargs   [2]int // fewest and most positional arguments
	// setup registers the command's own flags and returns its action.
	setup func(fs *flag.FlagSet) func(a *adminCLI, args []string) error
}

var adminCommands = []adminCommand{
	{"links", "", "the live links (--type T, --user U, --channel C, --node N filter)", [2]int{0, 0}, setupLinks},
	{"link", "ID", "one link", [2]int{1, 1}, setupLink},
	{"trace", "ID", "the link's last libwebsockets callbacks (--follow: until it closes)", [2]int{1, 1}, setupTrace},
	{"send", "ID MSG", "send MSG (- reads stdin) to a link (--binary: as a binary message)", [2]int{2, 2}, setupSend},
	{"close", "ID CODE [REASON]", "close a link with a close code and reason", [2]int{2, 3}, setupClose},
	{"subscribe", "ID CHANNEL", "add a link to a channel (--since OFFSET:EPOCH: with what it missed)", [2]int{2, 2}, setupSubscribe},
	{"unsubscribe", "ID CHANNEL", "remove a link from a channel", [2]int{2, 2}, setupUnsubscribe},
	{"publish", "CHANNEL MSG", "send MSG (- reads stdin) to a channel's members (--binary)", [2]int{2, 2}, setupPublish},
	{"channels", "", "the channels and their member counts", [2]int{0, 0}, setupChannels},
	{"routes", "", "the route table", [2]int{0, 0}, setupRoutes},
	{"nodes", "", "the nodes of the cluster", [2]int{0, 0}, setupNodes},
}

func findAdminCommand(name string) *adminCommand {
	for i := range adminCommands {
		if adminCommands[i].name == name {
			return &adminCommands[i]
		}
	}
	return nil
}

// adminCommandsHelp lists the admin commands for lwsgate help.
func adminCommandsHelp() string {
	var b strings.Builder
	b.WriteString("Admin commands, over a running gateway's admin API:\n")
	for _, c := range adminCommands {
		fmt.Fprintf(&b, "  lwsgate %-28s %s\n", strings.TrimSpace(c.name+" "+c.args), c.summary)
	}
	b.WriteString(`Their flags, before or after the arguments:
  --admin URL     the admin API (env LWSGATE_ADMIN_URL; default http://` + gateway.DefaultConfig().Admin.Addr + `)
  --token TOKEN   admin.token (env LWSGATE_ADMIN_TOKEN, which keeps it out of ps)
  --json          print the API's JSON as it came, for scripts
  --timeout D     give up on a request after D (default 10s)
`)
	return b.String()
}

// adminCLI is one admin command's run: where the API is and where output
// goes. Not safe for concurrent use.
type adminCLI struct {
	ctx     context.Context
	base    *url.URL
	token   string
	json    bool
	timeout time.Duration
	client  *http.Client
	stdin   io.Reader
	stdout  io.Writer
	stderr  io.Writer // notes beside the answer (a cluster's partial listing)
	now     time.Time // for ages, fixed per run so that a table is consistent
}

// runAdmin runs admin command name with its arguments.
func runAdmin(ctx context.Context, c *adminCommand, args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) int {
	fs := flag.NewFlagSet("lwsgate "+c.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	admin := fs.String("admin", "", "admin API `URL` (env LWSGATE_ADMIN_URL; default http://"+gateway.DefaultConfig().Admin.Addr+")")
	token := fs.String("token", "", "admin `token` (env LWSGATE_ADMIN_TOKEN)")
	asJSON := fs.Bool("json", false, "print the API's JSON as it came")
	timeout := fs.Duration("timeout", 10*time.Second, "give up on a request after this `long`")
	action := c.setup(fs)
	pos, err := parseInterleaved(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprintf(stderr, "usage: lwsgate %s [flags] %s\n  %s\n", c.name, c.args, c.summary)
		fs.SetOutput(stderr)
		fs.PrintDefaults()
		return exitOK
	}
	if err == nil && (len(pos) < c.nargs[0] || len(pos) > c.nargs[1]) {
		err = fmt.Errorf("%s: want %s, got %d arguments (lwsgate %s -h)", c.name, argsWanted(c), len(pos), c.name)
	}
	a := &adminCLI{ctx: ctx, token: *token, json: *asJSON, timeout: *timeout, client: &http.Client{},
		stdin: stdin, stdout: stdout, stderr: stderr, now: time.Now()}
	if err == nil {
		a.base, err = adminURL(*admin, getenv)
	}
	if err == nil && *timeout <= 0 {
		err = fmt.Errorf("--timeout %v: must be positive", *timeout)
	}
	if err != nil {
		fmt.Fprintln(stderr, "lwsgate:", err)
		return exitUsage
	}
	if a.token == "" {
		a.token = getenv("LWSGATE_ADMIN_TOKEN")
	}
	if err := action(a, pos); err != nil {
		fmt.Fprintln(stderr, "lwsgate:", err)
		return exitCode(err)
	}
	return exitOK
}

func argsWanted(c *adminCommand) string {
	if c.args == "" {
		return "no arguments"
	}
	return c.args
}

// parseInterleaved parses flags before, between and after the positional
// arguments (the flag package stops at the first of those), and returns
// the positional ones; after "--" everything is positional.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos, rest []string
	for i, a := range args {
		if a == "--" {
			args, rest = args[:i], args[i+1:]
			break
		}
	}
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return append(pos, rest...), nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

// adminURL is --admin, else LWSGATE_ADMIN_URL, else the default config's
// admin address; host:port alone means http.
func adminURL(flagValue string, getenv func(string) string) (*url.URL, error) {
	raw, from := flagValue, "--admin"
	if raw == "" {
		raw, from = getenv("LWSGATE_ADMIN_URL"), "LWSGATE_ADMIN_URL"
	}
	if raw == "" {
		raw, from = gateway.DefaultConfig().Admin.Addr, "the default admin address"
	}
	if !strings.Contains(raw, "://") {
		raw = "http://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%s %q: want http://HOST:PORT or HOST:PORT", from, raw)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	return u, nil
}

// apiError is an answer of the admin API other than 2xx.
type apiError struct {
	Status int
	What   string // what was asked, e.g. "link 12"
	Msg    string // the API's error message
	Closed *gateway.ClosedLink
	Body   []byte // the answer as it came
}

func (e *apiError) Error() string {
	s := e.What + ": "
	switch e.Status {
	case 404:
		s += "not found"
	case 410:
		s += "gone"
	case 401, 403:
		s += "refused by the admin API"
	case 409, 429:
		s += "refused"
	default:
		s += http.StatusText(e.Status)
	}
	s += fmt.Sprintf(" (%d): %s", e.Status, e.Msg)
	if e.Status == 401 {
		s += " (set --token or LWSGATE_ADMIN_TOKEN)"
	}
	if c := e.Closed; c != nil {
		s += fmt.Sprintf("; closed %s by the %s at %s", closeText(c.Code, c.Reason), c.By, c.At.Local().Format("2006-01-02 15:04:05.000"))
	}
	return s
}

// unreachableError: the request got no HTTP answer.
type unreachableError struct {
	url string
	err error
}

func (e *unreachableError) Error() string {
	return fmt.Sprintf("admin API at %s unreachable: %v", e.url, e.err)
}

func (e *unreachableError) Unwrap() error { return e.err }

// usageError is a bad argument found before asking the gateway.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return &usageError{fmt.Sprintf(format, args...)} }

func exitCode(err error) int {
	var ae *apiError
	var ue *unreachableError
	var us *usageError
	switch {
	case errors.As(err, &us):
		return exitUsage
	case errors.As(err, &ue):
		return exitUnreachable
	case errors.As(err, &ae):
		switch ae.Status {
		case 400:
			return exitUsage
		case 404:
			return exitNotFound
		case 410:
			return exitGone
		case 401, 403, 409, 429:
			return exitRefused
		}
	}
	return exitFailed
}

// call makes one request and returns the answer's body; an answer other
// than 2xx is an *apiError about what. With --json every answer, errors
// included, is printed as it came.
func (a *adminCLI) call(what, method, path, ctype string, body []byte, query url.Values) ([]byte, error) {
	ctx, cancel := context.WithTimeout(a.ctx, a.timeout)
	defer cancel()
	u := *a.base
	u.Path += path
	u.RawQuery = query.Encode()
	req, err := http.NewRequestWithContext(ctx, method, u.String(), bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if a.token != "" {
		req.Header.Set("Authorization", "Bearer "+a.token)
	}
	resp, err := a.client.Do(req)
	if err != nil {
		if inner := errors.Unwrap(err); inner != nil {
			err = inner // the url.Error repeats the method and URL
		}
		if errors.Is(err, context.DeadlineExceeded) {
			err = fmt.Errorf("no answer within %v (--timeout)", a.timeout)
		}
		return nil, &unreachableError{a.base.String(), err}
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, &unreachableError{a.base.String(), err}
	}
	if a.json {
		a.stdout.Write(out)
	}
	if resp.StatusCode/100 == 2 {
		if p := resp.Header.Get(gateway.PartialHeader); p != "" && a.stderr != nil {
			fmt.Fprintf(a.stderr, "lwsgate: %s: partial: some nodes did not answer (%s)\n", what, p)
		}
		return out, nil
	}
	ae := &apiError{Status: resp.StatusCode, What: what, Msg: strings.TrimSpace(string(out)), Body: out}
	var e struct {
		Error  string
		Closed *gateway.ClosedLink
	}
	if json.Unmarshal(out, &e) == nil && e.Error != "" {
		ae.Msg, ae.Closed = e.Error, e.Closed
	} else if ae.Msg == "" {
		ae.Msg = "(no body)"
	}
	return nil, ae
}

// get calls GET path and decodes its answer into v unless --json printed it.
func (a *adminCLI) get(what, path string, query url.Values, v any) (printed bool, err error) {
	body, err := a.call(what, "GET", path, "", nil, query)
	if err != nil || a.json {
		return a.json, err
	}
	if err := json.Unmarshal(body, v); err != nil {
		return false, fmt.Errorf("%s: the answer is not the API's: %v", what, err)
	}
	return false, nil
}

// linkID parses a link id argument.
func linkID(s string) (uint64, error) {
	var id uint64
	if _, err := fmt.Sscan(s, &id); err != nil || id == 0 || fmt.Sprint(id) != s {
		return 0, usagef("link id %q: want a positive integer", s)
	}
	return id, nil
}

// message is a MSG argument: the text itself, or stdin for "-".
func (a *adminCLI) message(arg string) ([]byte, error) {
	if arg != "-" {
		return []byte(arg), nil
	}
	b, err := io.ReadAll(a.stdin)
	if err != nil {
		return nil, fmt.Errorf("reading the message from stdin: %v", err)
	}
	return b, nil
}
