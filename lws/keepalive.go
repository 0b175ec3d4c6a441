package lws

import (
	"bytes"
	"time"
)

// Keepalive of accepted WebSocket links: the binding pings a link that has
// had no pong for its listener's PingInterval and drops it (1006) when it
// has had none for PingTimeout, as libwebsockets' own idle policy
// (secs_since_valid_ping, secs_since_valid_hangup) does, which the binding
// turns off on its listeners.
//
// Why not libwebsockets': it keeps each link's ping timer in the one list of
// timers of its service thread, sorted by deadline, and inserts it at the
// link's opening and again at each pong, where it lands at the tail: a walk
// over every open link each time (lws_dll2_add_sorted, 4.1.6 and 4.3.5).
// With 19,000 links opening, accepting cost 281-336 us of CPU per link with
// it, 55 us without. The binding's timers are Go's (setTimer), a heap.
//
// What differs from libwebsockets' pings:
//   - they carry keepalivePing as their payload, since libwebsockets does
//     not report a pong without payload on server links; so an empty pong
//     (answering a Conn.Ping(nil), or unsolicited) is no proof of life;
//   - a pong with that payload is not given to OnPong;
//   - the ping is written by the binding from the link's SERVER_WRITEABLE,
//     ahead of its queued messages (libwebsockets wrote its own ping before
//     that callback, which followed it all the same), so the reason log now
//     has a RECEIVE_PONG after each ping's SERVER_WRITEABLE.
//
// Links this side dialled keep libwebsockets' policy
// (DialOptions.PingInterval): they are few.

// keepalivePing is the payload of the binding's keepalive pings.
var keepalivePing = []byte("lwsgate-keepalive")

// keepalive is a listener's ping policy, resolved from its Listener.
//
// Concurrency: a value, read-only once the listener is open.
type keepalive struct {
	every, hangup time.Duration // ping after every without a pong; drop after hangup
}

func keepaliveOf(l *Listener) keepalive {
	if l.PingInterval == 0 {
		// The default pair: PingTimeout is not used without a
		// PingInterval (CheckKeepalive), as libwebsockets ignored it.
		return keepalive{every: DefaultPingInterval, hangup: DefaultPingInterval + DefaultPingGrace}
	}
	return keepalive{every: l.PingInterval, hangup: pingTimeout(l.PingInterval, l.PingTimeout)}
}

// startKeepalive arms the ping of a server link that just opened.
func (r *rec) startKeepalive() { r.setTimer(timerPing, r.lis.ka.every) }

// onPingDue is a server link's ping timer: it pings, and drops the link if
// no pong comes by its hang-up time.
func (r *rec) onPingDue() {
	conn, ok := r.role.(wsServer)
	if !ok {
		return
	}
	if conn.Ping(keepalivePing) != nil {
		return // closing
	}
	r.setTimer(timerHangup, r.lis.ka.hangup-r.lis.ka.every)
}

// onServerPong is a pong on a server link: it proves the link alive, and
// it reports whether the pong answers a keepalive ping (not OnPong's).
func (r *rec) onServerPong(data []byte) bool {
	if r.timer == timerPing || r.timer == timerHangup {
		r.setTimer(timerPing, r.lis.ka.every)
	}
	return bytes.Equal(data, keepalivePing)
}
