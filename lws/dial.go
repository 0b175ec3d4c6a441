package lws

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/lwsgate/lwsgate/callbacks"
	"github.com/lwsgate/lwsgate/cgo"
)

// A dial in progress: a client link from its connect call until it opens,
// a WebSocket link (Dial, client.go) or an HTTP request (Transport,
// httpclient.go), or fails with a *DialError. Everything here runs on the
// service goroutine, except where a timer posts to it.

// dialState is the role of a client link until it opens. It records how
// the dial went, so that a failure says which step failed (dialFailure),
// and reports the outcome once (onDone).
type dialState struct {
	r      *rec
	t      *target
	phase  int // bumped when a timer must no longer fire
	fail   dialFailure
	timer  *time.Timer
	onDone func(error) // service goroutine, once
	done   bool

	// What the link is to become: a WebSocket link with these settings,
	// or this HTTP request, whose request goes out during the dial.
	lo          *linkOpts
	subprotocol string // the server's choice (CLIENT_FILTER_PRE_ESTABLISH)
	hc          *clientReq
}

func (d *dialState) on(ev *callbacks.Event) int {
	r := d.r
	switch ev.Reason {
	case callbacks.ClientAppendHandshakeHeader:
		d.fail.connected = true // TCP and TLS are up
		if d.hc != nil {
			// From now on the request and the response headers.
			d.arm(d.hc.headerTimeout(r.ctx))
		}
	case callbacks.OpenSSLPerformServerCertVerification:
		if ev.Len != 0 && d.fail.verifyErr == 0 {
			d.fail.verifyErr = ev.Len
			d.fail.verifyMsg = cgo.X509ErrorString(ev.Len)
		}
	case callbacks.ClientConnectionError:
		d.fail.lwsText = string(ev.Data)
		d.fail.status = r.responseStatus()
	}
	if d.hc != nil {
		return d.onHTTPDial(ev)
	}
	switch ev.Reason {
	case callbacks.ClientFilterPreEstablish:
		d.subprotocol = r.responseHeader("sec-websocket-protocol")
	case callbacks.ClientEstablished:
		return d.openClient(ev.Flags&callbacks.Deflate != 0)
	}
	return 0
}

// onHTTPDial is on for an HTTP request: its body goes out, then its response
// opens it (clientReq.onResponse).
func (d *dialState) onHTTPDial(ev *callbacks.Event) int {
	switch ev.Reason {
	case callbacks.ClientHTTPWriteable:
		return d.hc.writeBody()
	case callbacks.EstablishedClientHTTP:
		return d.hc.onResponse()
	case callbacks.ReceiveClientHTTP, callbacks.ReceiveClientHTTPRead, callbacks.CompletedClientHTTP:
		return -1 // a body before any response
	}
	return 0
}

// destroy is WSI_DESTROY before the link opened: the dial failed.
func (d *dialState) destroy() CloseError {
	if d.hc != nil {
		d.hc.releaseBody()
	}
	if !d.done {
		d.finish(d.fail.classify(d.t.url))
	}
	return CloseError{}
}

func (d *dialState) busy() bool { return true }
func (d *dialState) stop()      { d.abort(ErrClosed) }

// finish reports the outcome once.
func (d *dialState) finish(err error) {
	if d.done {
		return
	}
	d.done = true
	d.phase++
	if d.timer != nil {
		d.timer.Stop()
	}
	d.onDone(err)
}

// arm makes the dial fail with os.ErrDeadlineExceeded after dt, unless
// the phase changed by then (the timer posts to the service goroutine).
func (d *dialState) arm(dt time.Duration) {
	if d.timer != nil {
		d.timer.Stop()
		d.timer = nil
	}
	d.phase++
	if dt <= 0 {
		return
	}
	phase := d.phase
	c := d.r.ctx
	d.timer = time.AfterFunc(dt, func() {
		c.post(func() {
			if d.phase == phase && !d.done {
				d.abort(os.ErrDeadlineExceeded)
			}
		})
	})
}

// abort ends a dial that has not finished, for cause.
func (d *dialState) abort(cause error) {
	if d.done {
		return
	}
	if d.fail.cause == nil {
		d.fail.cause = cause
	}
	if d.r.wsi == 0 {
		return
	}
	d.r.kill()
}

// kill closes r's connection without a handshake: at once when r is not
// the wsi of a callback in progress, else when that callback returns.
func (r *rec) kill() {
	c := r.ctx
	for _, w := range c.stack[:min(c.depth, len(c.stack))] {
		if w == uintptr(r.wsi) {
			r.killMe = true
			r.wsi.Kill(false)
			return
		}
	}
	// Kills come from posted functions, which run between lws_service
	// calls (see drainInCallbacks), where a synchronous kill frees a wsi
	// nothing else is using; 4.3 makes the asynchronous kill immediate (a
	// zero-delay sul), so it needs no such call.
	r.wsi.Kill(!asyncKillIsPrompt)
}

// asyncKillIsPrompt: libwebsockets 4.3 runs a zero-second timeout on its
// next service pass; 4.1 checks timeouts once a second.
const asyncKillIsPrompt = cgo.HeaderVersionNumber >= 4003000

// newDial makes the rec of a client link about to be connected, in its
// dial role, or says why there cannot be one.
func (c *Context) newDial(t *target, tlsCfg *ClientTLS, compress bool, ci *cgo.ConnectInfo) (*dialState, error) {
	if c.stopping {
		return nil, &DialError{URL: t.url, Kind: DialClosed, Err: ErrClosed}
	}
	vh, err := c.clientVhost(tlsCfg, compress)
	if err != nil {
		return nil, &DialError{URL: t.url, Kind: DialTLS, Err: err}
	}
	ci.Vhost = vh
	r := &rec{ctx: c, id: linkIDs.Add(1)}
	d := &dialState{r: r, t: t}
	d.fail.tls = t.tls
	r.role = d
	return d, nil
}

// connect starts the client link of d. A link that fails at once has its
// outcome reported before connect returns.
func (c *Context) connect(d *dialState, ci cgo.ConnectInfo) {
	r := d.r
	r.h = cgo.NewHandle(r)
	c.recs[r.id] = r
	ci.Handle = r.h
	c.connecting = r
	w, cl, err := c.lc.Connect(ci)
	c.connecting = nil
	if cl != nil {
		c.dialMem[r.id] = cl
	}
	if err != nil {
		d.fail.lwsText = err.Error()
		c.release(r)
		d.finish(d.fail.classify(d.t.url))
		return
	}
	if w == 0 {
		// Failed before any callback carried the handle (or after its
		// WSI_DESTROY already released it): release at the call site.
		if r.h != 0 {
			if d.fail.lwsText == "" {
				d.fail.lwsText = "lws_client_connect_via_info failed"
			}
			c.release(r)
		}
		d.finish(d.fail.classify(d.t.url))
		return
	}
	if r.h != 0 {
		r.wsi = w
	}
}

// clientProtocol is the name of the one protocol of client vhosts.
const clientProtocol = "lwsgo-client"

// clientIndex is the listener index carried by client vhosts' protocols.
const clientIndex = 0xffff

// clientVhost returns the client vhost for a TLS setting, creating it on
// first use. Links that offer permessage-deflate have vhosts of their own:
// libwebsockets offers a vhost's extensions on every link it makes.
func (c *Context) clientVhost(t *ClientTLS, compress bool) (cgo.VhostID, error) {
	var key ClientTLS
	if t != nil {
		key = ClientTLS{CAFile: t.CAFile, CertFile: t.CertFile, KeyFile: t.KeyFile}
	}
	vhosts := &c.clientVhosts
	name := "client%d"
	if compress {
		vhosts, name = &c.deflateVhosts, "client-deflate%d"
	}
	if id, ok := (*vhosts)[key]; ok {
		return id, nil
	}
	id, err := c.lc.NewClientVhost(cgo.VhostInfo{
		Index:          clientIndex,
		Name:           fmt.Sprintf(name, len(*vhosts)),
		Protocols:      []string{clientProtocol},
		Options:        cgo.OptionDoSSLGlobalInit,
		ClientCAPath:   key.CAFile,
		ClientCertPath: key.CertFile,
		ClientKeyPath:  key.KeyFile,
		TxPacketSize:   txPacketSize,
		Compression:    compress,
	})
	if err != nil {
		return 0, err
	}
	if *vhosts == nil {
		*vhosts = map[ClientTLS]cgo.VhostID{}
	}
	(*vhosts)[key] = id
	return id, nil
}

// responseStatus is the HTTP status of the response a client link
// received, or 0.
func (r *rec) responseStatus() int {
	buf, err := r.wsi.ClientResponse(nil, "")
	if err != nil {
		return 0
	}
	s, _, _ := strings.Cut(string(buf), "\x00")
	n, _ := strconv.Atoi(s)
	return n
}

// responseHeader returns one header of a client link's response.
func (r *rec) responseHeader(name string) string {
	buf, err := r.wsi.ClientResponse(nil, "")
	if err != nil {
		return ""
	}
	parts := strings.Split(string(buf), "\x00")
	for i := 1; i+1 < len(parts); i += 2 {
		if strings.EqualFold(parts[i], name) {
			return parts[i+1]
		}
	}
	return ""
}
