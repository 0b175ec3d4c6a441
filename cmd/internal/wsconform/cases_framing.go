package wsconform

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"sync"
)

// Cases returns every case, in report order.
func Cases() []*Case {
	casesOnce.Do(func() {
		for _, f := range []func() []*Case{
			framingCases, pingCases, reservedCases, opcodeCases, fragmentCases,
			utf8Cases, closeCases, limitCases, deflateCases,
		} {
			allCases = append(allCases, f()...)
		}
	})
	return allCases
}

var (
	casesOnce sync.Once
	allCases  []*Case
)

// echoThenFail expects wants, then the link failed with one of codes. A
// failure that comes before all wants arrived is NON-STRICT when what did
// arrive is a prefix of wants: the implementation failed the link on the
// bad frame before it wrote its reply to the good ones that came in the
// same read.
func (t *T) echoThenFail(wants []Want, codes ...int) Result {
	for i, w := range wants {
		e := t.Next()
		if w.matches(e) {
			continue
		}
		if e.Kind == EvClose || e.Kind == EvEOF || e.Kind == EvReset {
			t.p.unread(e)
			r := t.ExpectFail(codes...)
			if r.Verdict == Failed {
				return r
			}
			return nonStrict("failed the link as it should, but before writing %d of %d expected replies (%s): they were queued when the bad frame, read in the same pass, failed the link", len(wants)-i, len(wants), w)
		}
		return failed("expected %s, got %s", w, describe(e))
	}
	return t.ExpectFail(codes...)
}

// unread puts an event back at the head of the queue.
func (p *Peer) unread(e Event) {
	if e.Kind == EvEOF || e.Kind == EvReset {
		return // terminal events are sticky anyway
	}
	p.mu.Lock()
	p.q = append([]Event{e}, p.q...)
	p.mu.Unlock()
}

func repeat(b byte, n int) []byte { return bytes.Repeat([]byte{b}, n) }

func framingCases() []*Case {
	var cs []*Case
	sizes := []int{0, 125, 126, 127, 128, 65535, 65536}
	for ti, typ := range []struct {
		name string
		op   byte
		fill byte
	}{{"text", OpText, '*'}, {"binary", OpBinary, 0xfe}} {
		for i, n := range sizes {
			payload := repeat(typ.fill, n)
			cs = append(cs, &Case{
				ID:     fmt.Sprintf("1.%d.%d", ti+1, i+1),
				Desc:   fmt.Sprintf("Send a %s message with a payload of %d bytes.", typ.name, n),
				Expect: "The message is echoed. Clean close with normal code.",
				Run: func(t *T) Result {
					t.Send(Frame{Fin: true, Opcode: typ.op, Payload: payload})
					return t.Echo(Want{Kind: EvMessage, Op: typ.op, Data: payload})
				},
			})
		}
		payload := repeat(typ.fill, 65536)
		cs = append(cs, &Case{
			ID:     fmt.Sprintf("1.%d.8", ti+1),
			Desc:   fmt.Sprintf("Send a %s message with a payload of 65536 bytes, in writes of 997 bytes.", typ.name),
			Expect: "The message is echoed. Clean close with normal code.",
			Run: func(t *T) Result {
				t.SendChopped(997, Frame{Fin: true, Opcode: typ.op, Payload: payload})
				return t.Echo(Want{Kind: EvMessage, Op: typ.op, Data: payload})
			},
		})
	}
	cs = append(cs,
		&Case{
			ID: "1.3.1", Only: TargetServer, Lwsgate: true,
			Desc:   "Send an unmasked text message from the client.",
			Expect: "The server fails the link (1002): a server MUST close the connection on an unmasked frame (RFC 6455 section 5.1).",
			Run: func(t *T) Result {
				t.Send(Frame{Fin: true, Opcode: OpText, Payload: []byte("unmasked"), Mask: MaskOff})
				return t.ExpectFail(1002)
			},
		},
		&Case{
			ID: "1.3.2", Only: TargetClient, Lwsgate: true,
			Desc:   "Send a masked text message from the server.",
			Expect: "The client fails the link (1002): a client MUST close the connection on a masked frame (RFC 6455 section 5.1).",
			Run: func(t *T) Result {
				t.Send(Frame{Fin: true, Opcode: OpText, Payload: []byte("masked"), Mask: MaskOn})
				return t.ExpectFail(1002)
			},
		},
		&Case{
			ID: "1.3.3", Lwsgate: true,
			Desc:   "Send a frame whose 64-bit payload length has the most significant bit set.",
			Expect: "The link is failed (1002, or 1009 for a length taken as too big): the bit MUST be 0 (RFC 6455 section 5.2).",
			Run: func(t *T) Result {
				t.Send(Frame{Fin: true, Opcode: OpBinary, Payload: []byte("12345678"), Len64: 1<<63 | 8})
				return t.ExpectFail(1002, 1009)
			},
		},
	)
	return cs
}

func pingCases() []*Case {
	pingEcho := func(id, desc string, payload []byte, chop int) *Case {
		return &Case{
			ID: id, Desc: desc,
			Expect: "A pong with the ping's payload. Clean close with normal code.",
			Run: func(t *T) Result {
				if chop > 0 {
					t.SendChopped(chop, Ping(payload))
				} else {
					t.Send(Ping(payload))
				}
				return t.Echo(WantPong(payload))
			},
		}
	}
	cs := []*Case{
		pingEcho("2.1", "Send a ping without payload.", nil, 0),
		pingEcho("2.2", "Send a ping with a small text payload.", []byte("Hello, world!"), 0),
		pingEcho("2.3", "Send a ping with a small binary (not UTF-8) payload.", []byte{0x00, 0xff, 0xfe, 0xfd, 0xfc, 0xfb, 0x00, 0xff}, 0),
		pingEcho("2.4", "Send a ping with a binary payload of 125 bytes.", repeat(0xfe, 125), 0),
		{
			ID: "2.5", Desc: "Send a ping with a binary payload of 126 bytes.",
			Expect: "The link is failed (1002): control frames carry at most 125 bytes (RFC 6455 section 5.5).",
			Run: func(t *T) Result {
				t.Send(Ping(repeat(0xfe, 126)))
				return t.ExpectFail(1002)
			},
		},
		pingEcho("2.6", "Send a ping with a binary payload of 125 bytes, one byte per write.", repeat(0xfe, 125), 1),
		{
			ID: "2.7", Desc: "Send an unsolicited pong without payload.",
			Expect: "Nothing in reply. Clean close with normal code.",
			Run: func(t *T) Result {
				t.Send(Pong(nil))
				return t.CloseNormally()
			},
		},
		{
			ID: "2.8", Desc: "Send an unsolicited pong with payload.",
			Expect: "Nothing in reply. Clean close with normal code.",
			Run: func(t *T) Result {
				t.Send(Pong([]byte("unsolicited pong payload")))
				return t.CloseNormally()
			},
		},
		{
			ID: "2.9", Desc: "Send an unsolicited pong with payload, then a ping with payload.",
			Expect: "Only the pong for the ping. Clean close with normal code.",
			Run: func(t *T) Result {
				t.Send(Pong([]byte("unsolicited pong payload")), Ping([]byte("ping payload")))
				return t.Echo(WantPong([]byte("ping payload")))
			},
		},
	}
	for i, chop := range []int{0, 1} {
		how := ", in one write"
		if chop == 1 {
			how = ", one byte per write"
		}
		cs = append(cs, &Case{
			ID:     fmt.Sprintf("2.%d", 10+i),
			Desc:   "Send 10 pings with payload, then a text message" + how + ".",
			Expect: "A pong for each ping, in order. RFC 6455 section 5.5.3 allows answering only the most recent of several pings not yet answered: that is NON-STRICT. Clean close with normal code.",
			Run:    func(t *T) Result { return tenPings(t, chop) },
		})
	}
	return cs
}

// tenPings sends 10 pings and a text message after them, all in one write
// or one byte per write, and collects the pongs until the last ping's. The
// message's echo shows the pings were all read; a missing pong is then
// waited for at most failFastWait more.
func tenPings(t *T, chop int) Result {
	var frames []Frame
	var payloads []string
	for i := range 10 {
		p := fmt.Sprintf("payload-%d", i)
		payloads = append(payloads, p)
		frames = append(frames, Ping([]byte(p)))
	}
	marker := []byte("after the pings")
	frames = append(frames, Text(marker))
	t.p.write(chop, frames...)
	var got []string
	next := 0 // index of the first ping a pong may still answer
	echoed := false
	for next < 10 || !echoed {
		var e Event
		if echoed {
			e = t.NextWithin(t.failFastWait())
		} else {
			e = t.Next()
		}
		switch {
		case e.Kind == EvMessage && !echoed:
			if !WantText(marker).matches(e) {
				return failed("expected the echo of %q, got %s", marker, describe(e))
			}
			echoed = true
			continue
		case e.Kind == EvPong && next < 10:
			i := slices.Index(payloads[next:], string(e.Data))
			if i < 0 {
				return failed("pong %q is not for a ping sent after the last one answered", e.Data)
			}
			got = append(got, string(e.Data))
			next += i + 1
			continue
		}
		answered := strings.Join(got, ",")
		if answered == "" {
			answered = "none"
		}
		if e.Kind == EvTimeout && echoed {
			return failed("the last ping (%q) was never answered (pongs: %s; none within %v after the echo of the message sent after the pings): RFC 6455 section 5.5.2 requires a pong, and 5.5.3 only allows skipping all but the most recent ping", payloads[9], answered, t.failFastWait())
		}
		return failed("after pongs %s, expected more pongs or the echo, got %s", answered, describe(e))
	}
	r := t.CloseNormally()
	if r.Verdict == OK && len(got) < 10 {
		return nonStrict("answered %d of 10 pings (%s), the last included: RFC 6455 section 5.5.3 allows a pong for the most recent ping only", len(got), strings.Join(got, ","))
	}
	return r
}

func reservedCases() []*Case {
	hello := []byte("Hello, world!")
	echoThenRsv := func(id string, rsv byte, chop int, how string) *Case {
		return &Case{
			ID:     id,
			Desc:   fmt.Sprintf("Send a small text message, then again with RSV = %d, then a ping%s.", rsv, how),
			Expect: "The first message is echoed, then the link is failed (1002): RSV bits MUST be 0 when no extension defines them (RFC 6455 section 5.2). No pong.",
			Run: func(t *T) Result {
				if chop == 0 {
					t.SendJoined(Text(hello), Frame{Fin: true, Rsv: rsv, Opcode: OpText, Payload: hello}, Ping(hello))
					return t.echoThenFail([]Want{WantText(hello)}, 1002)
				}
				// Chopped, the outcome would depend on where the
				// implementation's reads fall; waiting for the echo
				// keeps the case about the RSV bits.
				t.p.write(chop, Text(hello))
				if r := t.expect(WantText(hello)); r != nil {
					return *r
				}
				t.p.write(chop, Frame{Fin: true, Rsv: rsv, Opcode: OpText, Payload: hello}, Ping(hello))
				return t.ExpectFail(1002)
			},
		}
	}
	return []*Case{
		{
			ID: "3.1", Desc: "Send a small text message with RSV = 1.",
			Expect: "The link is failed (1002).",
			Run: func(t *T) Result {
				t.Send(Frame{Fin: true, Rsv: 1, Opcode: OpText, Payload: hello})
				return t.ExpectFail(1002)
			},
		},
		echoThenRsv("3.2", 2, 0, ""),
		echoThenRsv("3.3", 3, -1, ", each frame in its own write, the second once the first is echoed"),
		echoThenRsv("3.4", 4, 1, ", one byte per write, the second once the first is echoed"),
		{
			ID: "3.5", Desc: "Send a small binary message with RSV = 5.",
			Expect: "The link is failed (1002).",
			Run: func(t *T) Result {
				t.Send(Frame{Fin: true, Rsv: 5, Opcode: OpBinary, Payload: []byte{0x00, 0xff, 0xfe, 0xfd, 0xfc, 0xfb, 0x00, 0xff}})
				return t.ExpectFail(1002)
			},
		},
		{
			ID: "3.6", Desc: "Send a ping with RSV = 6.",
			Expect: "The link is failed (1002).",
			Run: func(t *T) Result {
				t.Send(Frame{Fin: true, Rsv: 6, Opcode: OpPing, Payload: hello})
				return t.ExpectFail(1002)
			},
		},
		{
			ID: "3.7", Desc: "Send a close with RSV = 7.",
			Expect: "The link is failed (1002).",
			Run: func(t *T) Result {
				t.Send(Frame{Fin: true, Rsv: 7, Opcode: OpClose, Payload: ClosePayload(1000, "")})
				return t.ExpectFail(1002)
			},
		},
	}
}

func opcodeCases() []*Case {
	hello := []byte("Hello, world!")
	var cs []*Case
	for gi, ops := range [][]byte{{3, 4, 5, 6, 7}, {11, 12, 13, 14, 15}} {
		kind := "non-control"
		if gi == 1 {
			kind = "control"
		}
		for i, op := range ops {
			id := fmt.Sprintf("4.%d.%d", gi+1, i+1)
			var payload []byte
			withPayload := ""
			if i%2 == 1 || i == 4 {
				payload = []byte("reserved opcode payload")
				withPayload = " and a payload"
			}
			if i < 2 {
				cs = append(cs, &Case{
					ID: id, Desc: fmt.Sprintf("Send a frame with the reserved %s opcode %d%s.", kind, op, withPayload),
					Expect: "The link is failed (1002): reserved opcodes MUST fail the link (RFC 6455 section 5.2).",
					Run: func(t *T) Result {
						t.Send(Frame{Fin: true, Opcode: op, Payload: payload})
						return t.ExpectFail(1002)
					},
				})
				continue
			}
			cs = append(cs, &Case{
				ID: id, Desc: fmt.Sprintf("Send a small text message, then a frame with the reserved %s opcode %d%s, then a ping.", kind, op, withPayload),
				Expect: "The message is echoed, then the link is failed (1002). No pong.",
				Run: func(t *T) Result {
					t.SendJoined(Text(hello), Frame{Fin: true, Opcode: op, Payload: payload}, Ping(hello))
					return t.echoThenFail([]Want{WantText(hello)}, 1002)
				},
			})
		}
	}
	return cs
}

func fragmentCases() []*Case {
	f1, f2 := []byte("fragment1"), []byte("fragment2")
	both := []byte("fragment1fragment2")
	pingPayload := []byte("ping payload")
	chopName := map[int]string{0: "in one write", -1: "each frame in its own write", 1: "one byte per write"}
	cs := []*Case{
		{
			ID: "5.1", Desc: "Send a ping fragmented into 2 frames.",
			Expect: "The link is failed (1002): control frames MUST NOT be fragmented (RFC 6455 section 5.5).",
			Run: func(t *T) Result {
				t.Send(Frame{Opcode: OpPing, Payload: f1}, Frame{Fin: true, Opcode: OpContinuation, Payload: f2})
				return t.ExpectFail(1002)
			},
		},
		{
			ID: "5.2", Desc: "Send a pong fragmented into 2 frames.",
			Expect: "The link is failed (1002).",
			Run: func(t *T) Result {
				t.Send(Frame{Opcode: OpPong, Payload: f1}, Frame{Fin: true, Opcode: OpContinuation, Payload: f2})
				return t.ExpectFail(1002)
			},
		},
	}
	for i, chop := range []int{0, -1, 1} {
		cs = append(cs, &Case{
			ID: fmt.Sprintf("5.%d", 3+i), Desc: "Send a text message fragmented into 2 frames, " + chopName[chop] + ".",
			Expect: "The message is echoed.",
			Run: func(t *T) Result {
				t.p.write(chop, Frame{Opcode: OpText, Payload: f1}, Frame{Fin: true, Opcode: OpContinuation, Payload: f2})
				return t.Echo(WantText(both))
			},
		})
	}
	for i, chop := range []int{0, -1, 1} {
		cs = append(cs, &Case{
			ID: fmt.Sprintf("5.%d", 6+i), Desc: "Send a text message fragmented into 2 frames with a ping in between, " + chopName[chop] + ".",
			Expect: "The pong, then the message.",
			Run: func(t *T) Result {
				t.p.write(chop, Frame{Opcode: OpText, Payload: f1}, Ping(pingPayload), Frame{Fin: true, Opcode: OpContinuation, Payload: f2})
				return t.Echo(WantPong(pingPayload), WantText(both))
			},
		})
	}
	for gi, fin := range []bool{true, false} {
		for i, chop := range []int{0, -1, 1} {
			cs = append(cs, &Case{
				ID:     fmt.Sprintf("5.%d", 9+gi*3+i),
				Desc:   fmt.Sprintf("Send a continuation frame with FIN = %v and nothing to continue, then a text message, %s.", fin, chopName[chop]),
				Expect: "The link is failed (1002): there is no message to continue (RFC 6455 section 5.4).",
				Run: func(t *T) Result {
					t.p.write(chop, Frame{Fin: fin, Opcode: OpContinuation, Payload: []byte("non-continuation payload")}, Text([]byte("Hello, world!")))
					return t.ExpectFail(1002)
				},
			})
		}
	}
	cs = append(cs,
		&Case{
			ID: "5.15", Desc: "Send a text message in 2 fragments, then a continuation frame with FIN = false and nothing to continue, then a text message, in one write.",
			Expect: "The first message is echoed, then the link is failed (1002).",
			Run: func(t *T) Result {
				t.SendJoined(Frame{Opcode: OpText, Payload: f1}, Frame{Fin: true, Opcode: OpContinuation, Payload: f2},
					Frame{Opcode: OpContinuation, Payload: []byte("fragment3")}, Text([]byte("fragment4")))
				return t.echoThenFail([]Want{WantText(both)}, 1002)
			},
		},
	)
	for i, fin := range []bool{false, true} {
		cs = append(cs, &Case{
			ID:     fmt.Sprintf("5.%d", 16+i),
			Desc:   fmt.Sprintf("Twice: a continuation frame with FIN = %v and nothing to continue, then a text message in 2 fragments.", fin),
			Expect: "The link is failed (1002).",
			Run: func(t *T) Result {
				var fs []Frame
				for range 2 {
					fs = append(fs, Frame{Fin: fin, Opcode: OpContinuation, Payload: f1},
						Frame{Opcode: OpText, Payload: f2}, Frame{Fin: true, Opcode: OpContinuation, Payload: []byte("fragment3")})
				}
				t.SendJoined(fs...)
				return t.ExpectFail(1002)
			},
		})
	}
	cs = append(cs, &Case{
		ID: "5.18", Desc: "Send a text message in 2 fragments that both have the text opcode.",
		Expect: "The link is failed (1002): frames after the first of a message MUST have opcode 0 (RFC 6455 section 5.4).",
		Run: func(t *T) Result {
			t.SendJoined(Frame{Opcode: OpText, Payload: f1}, Frame{Fin: true, Opcode: OpText, Payload: f2})
			return t.ExpectFail(1002)
		},
	})
	for i, joined := range []bool{false, true} {
		how := "each frame in its own write"
		if joined {
			how = "each batch in one write"
		}
		cs = append(cs, &Case{
			ID:     fmt.Sprintf("5.%d", 19+i),
			Desc:   "Send a text message in 5 fragments: 2 fragments and a ping; once the pong is back, 2 more fragments, a ping and the last fragment (" + how + ").",
			Expect: "Each pong comes while the message is still incomplete, then the message is echoed.",
			Run: func(t *T) Result {
				send := t.Send
				if joined {
					send = t.SendJoined
				}
				frags := [][]byte{[]byte("fragment1"), []byte("fragment2"), []byte("fragment3"), []byte("fragment4"), []byte("fragment5")}
				send(Frame{Opcode: OpText, Payload: frags[0]}, Frame{Opcode: OpContinuation, Payload: frags[1]}, Ping([]byte("pongme 1!")))
				if r := t.expect(WantPong([]byte("pongme 1!"))); r != nil {
					return *r
				}
				send(Frame{Opcode: OpContinuation, Payload: frags[2]}, Frame{Opcode: OpContinuation, Payload: frags[3]},
					Ping([]byte("pongme 2!")), Frame{Fin: true, Opcode: OpContinuation, Payload: frags[4]})
				return t.Echo(WantPong([]byte("pongme 2!")), WantText(bytes.Join(frags, nil)))
			},
		})
	}
	return cs
}
