package wsconform

import (
	"bytes"
	"fmt"
)

// answerClose expects the implementation's answer to the close the peer
// sent: a close with one of codes, nothing before it (what the peer sent
// after its close must be ignored), then the end of the link.
func (t *T) answerClose(codes ...int) Result {
	e := t.Next()
	switch e.Kind {
	case EvClose:
		if !SendableCode(e.Code) && e.Code != 1005 {
			return failed("answered with an invalid close frame: %s", describe(e))
		}
		for _, c := range codes {
			if e.Code == c {
				return t.afterClose(OK, "")
			}
		}
		return failed("answered the close with %s, want %s", describe(e), codeList(codes))
	case EvViolation:
		return failed("%s", e)
	}
	return failed("expected the close answer, got %s", describe(e))
}

func closeCases() []*Case {
	hello := []byte("Hello World!")
	cs := []*Case{
		{
			ID: "7.1.1", Desc: "Send a message, then a close.", Expect: "The message is echoed, then a clean close with normal code.",
			Run: func(t *T) Result {
				t.Send(Text(hello))
				if r := t.expect(WantText(hello)); r != nil {
					return *r
				}
				return t.CloseNormally()
			},
		},
		{
			ID: "7.1.2", Desc: "Send two close frames.", Expect: "A clean close with normal code; the second close is ignored.",
			Run: func(t *T) Result {
				t.SendJoined(Close(1000, ""), Close(1000, ""))
				return t.answerClose(1000, 1005)
			},
		},
		{
			ID: "7.1.3", Desc: "Send a ping after the close.", Expect: "A clean close with normal code, no pong.",
			Run: func(t *T) Result {
				t.SendJoined(Close(1000, ""), Ping(hello))
				return t.answerClose(1000, 1005)
			},
		},
		{
			ID: "7.1.4", Desc: "Send a text message after the close.", Expect: "A clean close with normal code; the message is ignored.",
			Run: func(t *T) Result {
				t.SendJoined(Close(1000, ""), Text(hello))
				return t.answerClose(1000, 1005)
			},
		},
		{
			ID: "7.1.5", Desc: "Send the first fragment of a message, a close, then the last fragment.", Expect: "A clean close with normal code; no message.",
			Run: func(t *T) Result {
				t.SendJoined(Frame{Opcode: OpText, Payload: []byte("fragment1")}, Close(1000, ""), Frame{Fin: true, Opcode: OpContinuation, Payload: []byte("fragment2")})
				return t.answerClose(1000, 1005)
			},
		},
		{
			ID: "7.1.6", Desc: "Send a 256 KiB message, a small message, a close and a ping, back to back.",
			Expect: "Both messages echoed, then a clean close, no pong. Autobahn calls the case informational: when the close is handled before the echoes are written, they may be missing; here that is NON-STRICT.",
			Run: func(t *T) Result {
				big := bytes.Repeat([]byte("BAsd7&jh23"), 256<<10/10)
				t.SendJoined(Text(big), Text(hello), Close(1000, ""), Ping(nil))
				got := 0
				for _, w := range []Want{WantText(big), WantText(hello)} {
					e := t.Next()
					if e.Kind == EvClose {
						t.p.unread(e)
						break
					}
					if !w.matches(e) {
						return failed("expected %s, got %s", w, describe(e))
					}
					got++
				}
				r := t.answerClose(1000, 1005)
				if r.Verdict == OK && got < 2 {
					return nonStrict("the close was answered before %d of the 2 echoes were written (the messages were queued when the close arrived in the same read)", 2-got)
				}
				return r
			},
		},
		{
			ID: "7.3.1", Desc: "Send a close with an empty payload (no code, no reason).", Expect: "A clean close with normal code or none.",
			Run: func(t *T) Result { t.Send(Close(0, "")); return t.answerClose(1000, 1005) },
		},
		{
			ID: "7.3.2", Desc: "Send a close with a 1-byte payload.",
			Expect: "The link is failed (1002), or TCP dropped: a close payload that is not empty starts with a 2-byte code (RFC 6455 section 5.5.1). Echoing the byte back is FAILED.",
			Run: func(t *T) Result {
				t.Send(Frame{Fin: true, Opcode: OpClose, Payload: []byte{0x03}})
				return t.ExpectFailStrict(1002)
			},
		},
		{
			ID: "7.3.3", Desc: "Send a close with code 1000 and no reason.", Expect: "A clean close with normal code.",
			Run: func(t *T) Result { t.Send(Close(1000, "")); return t.answerClose(1000) },
		},
		{
			ID: "7.3.4", Desc: "Send a close with code 1000 and a reason.", Expect: "A clean close with normal code.",
			Run: func(t *T) Result { t.Send(Close(1000, "Hello World!")); return t.answerClose(1000) },
		},
		{
			ID: "7.3.5", Desc: "Send a close with code 1000 and a reason of the maximum length, 123 bytes.", Expect: "A clean close with normal code.",
			Run: func(t *T) Result { t.Send(Close(1000, string(repeat('*', 123)))); return t.answerClose(1000) },
		},
		{
			ID: "7.3.6", Desc: "Send a close with code 1000 and a reason of 124 bytes (a 126-byte control frame).",
			Expect: "The link is failed (1002), or TCP dropped: control frames carry at most 125 bytes (RFC 6455 section 5.5).",
			Run: func(t *T) Result {
				t.Send(Close(1000, string(repeat('*', 124))))
				return t.ExpectFailStrict(1002)
			},
		},
		{
			ID: "7.5.1", Desc: "Send a close with code 1000 and a reason that is not valid UTF-8.",
			Expect: "The link is failed (1007, or 1002), or TCP dropped: the reason MUST be UTF-8 (RFC 6455 section 5.5.1). Echoing the reason back is FAILED.",
			Run: func(t *T) Result {
				t.Send(Frame{Fin: true, Opcode: OpClose, Payload: append(ClosePayload(1000, ""), kosme+"\xed\xa0\x80"+"edited"...)})
				return t.ExpectFailStrict(1007, 1002)
			},
		},
	}
	// 7.7.x: codes a close frame may carry; 1012-1014 (IANA registered
	// after Autobahn's list) are lwsgate additions.
	for i, code := range []int{1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999, 1012, 1013, 1014} {
		cs = append(cs, &Case{
			ID: fmt.Sprintf("7.7.%d", i+1), Lwsgate: i >= 13,
			Desc:   fmt.Sprintf("Send a close with the valid code %d.", code),
			Expect: "A clean close with 1000 or the same code.",
			Run:    func(t *T) Result { t.Send(Close(code, "")); return t.answerClose(1000, code) },
		})
	}
	// 7.9.x: codes a close frame must not carry; 1015 is an lwsgate
	// addition (RFC 6455 section 7.4.1: never sent in a close frame).
	for i, code := range []int{0, 999, 1004, 1005, 1006, 1016, 1100, 2000, 2999, 1015} {
		cs = append(cs, &Case{
			ID: fmt.Sprintf("7.9.%d", i+1), Lwsgate: i >= 9,
			Desc:   fmt.Sprintf("Send a close with the invalid code %d.", code),
			Expect: "The link is failed (1002), or TCP dropped. Echoing the code back is FAILED.",
			Run: func(t *T) Result {
				t.Send(Frame{Fin: true, Opcode: OpClose, Payload: []byte{byte(code >> 8), byte(code)}})
				return t.ExpectFailStrict(1002)
			},
		})
	}
	for i, code := range []int{5000, 65535} {
		cs = append(cs, &Case{
			ID:     fmt.Sprintf("7.13.%d", i+1),
			Desc:   fmt.Sprintf("Send a close with the code %d, outside every range RFC 6455 defines.", code),
			Expect: "RFC 6455 leaves this undefined (Autobahn: informational). Failing the link (1002) or dropping TCP is OK; a clean close is NON-STRICT.",
			Run: func(t *T) Result {
				t.Send(Frame{Fin: true, Opcode: OpClose, Payload: []byte{byte(code >> 8), byte(code)}})
				e := t.Next()
				if e.Kind == EvViolation && e.Detail == fmt.Sprintf("close code %d may not be sent (section 7.4)", code) {
					// An echo of the code: judged below.
					e = t.Next()
				}
				t.p.unread(e)
				if e.Kind == EvClose && e.Code != 1002 {
					t.Next()
					if r := t.afterClose(OK, ""); r.Verdict == Failed {
						return r
					}
					return nonStrict("closed cleanly with %d: the code is outside RFC 6455's ranges, which define nothing above 4999", e.Code)
				}
				return t.ExpectFailStrict(1002)
			},
		})
	}
	return cs
}
