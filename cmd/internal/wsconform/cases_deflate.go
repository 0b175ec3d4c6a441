package wsconform

import (
	"fmt"
	"strings"
)

// The 12.x/13.x cases are Autobahn's permessage-deflate families (RFC
// 7692), for an implementation that does not offer the extension: lwsgate's
// binding configures no libwebsockets extensions, so permessage-deflate
// must be declined cleanly. As a server the implementation must answer
// offers without Sec-WebSocket-Extensions and go on uncompressed; as a
// client it must not offer it, and must fail a link whose server claims an
// extension it did not ask for (RFC 6455 section 4.1). Both must fail a
// link on a frame with RSV1 set, which only a negotiated extension allows.
// If the binding ever negotiates permessage-deflate these cases FAIL on
// purpose: the suite has no deflate codec, and the cases must then be
// rewritten to exercise the extension.

// defaultOffer is the offer Autobahn's 12.x cases make.
const defaultOffer = "permessage-deflate; client_no_context_takeover; client_max_window_bits"

// notNegotiated checks the handshake: no extension agreed (TargetServer),
// none offered (TargetClient).
func (t *T) notNegotiated() *Result {
	if t.target == TargetServer {
		if ext := t.resp.Header.Values("Sec-WebSocket-Extensions"); len(ext) > 0 {
			r := failed("the server accepted extensions %q: this suite assumes permessage-deflate is not enabled and has no deflate codec (see the package doc)", strings.Join(ext, ", "))
			return &r
		}
		return nil
	}
	if ext := t.req.Header.Values("Sec-WebSocket-Extensions"); len(ext) > 0 {
		r := failed("the client offered extensions %q: this suite assumes permessage-deflate is not enabled (see the package doc)", strings.Join(ext, ", "))
		return &r
	}
	return nil
}

func deflateCases() []*Case {
	var cs []*Case
	for ti, typ := range []struct {
		name string
		op   byte
	}{{"text", OpText}, {"binary", OpBinary}} {
		for i, n := range []int{16, 64, 256, 1 << 10, 4 << 10, 64 << 10} {
			cs = append(cs, &Case{
				ID:     fmt.Sprintf("12.%d.%d", 1+ti, i+1),
				Offer:  defaultOffer,
				Desc:   fmt.Sprintf("Offer permessage-deflate (%q, as a client), then send 10 %s messages of %s.", defaultOffer, typ.name, sizeName(n)),
				Expect: "permessage-deflate is not negotiated (server: no Sec-WebSocket-Extensions in the 101; client: no offer); the messages are echoed uncompressed (RSV1 clear).",
				Run: func(t *T) Result {
					if r := t.notNegotiated(); r != nil {
						return *r
					}
					p := payloadFor(typ.op, n)
					var wants []Want
					for range 10 {
						t.Send(Frame{Fin: true, Opcode: typ.op, Payload: p})
						wants = append(wants, Want{Kind: EvMessage, Op: typ.op, Data: p})
					}
					return t.Echo(wants...)
				},
			})
		}
	}
	cs = append(cs, &Case{
		ID: "12.3.1", Only: TargetServer, Offer: defaultOffer, Lwsgate: true,
		Desc:   "Offer permessage-deflate as a client (server target), then send a text message with RSV1 set as if it were compressed.",
		Expect: "permessage-deflate is not negotiated, so RSV1 fails the link (1002).",
		Run: func(t *T) Result {
			if r := t.notNegotiated(); r != nil {
				return *r
			}
			// "Hello" compressed with DEFLATE (RFC 7692 section 7.2.3.1).
			t.Send(Frame{Fin: true, Rsv: 4, Opcode: OpText, Payload: []byte{0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00}})
			return t.ExpectFail(1002)
		},
	})
	offers := []string{
		"permessage-deflate",
		"permessage-deflate; client_no_context_takeover",
		"permessage-deflate; client_max_window_bits=8",
		"permessage-deflate; server_max_window_bits=9",
		"permessage-deflate; server_no_context_takeover; client_no_context_takeover",
		"permessage-deflate; client_max_window_bits=15; server_max_window_bits=15",
		"permessage-deflate; server_max_window_bits=8, permessage-deflate; client_max_window_bits, permessage-deflate",
	}
	for i, offer := range offers {
		cs = append(cs, &Case{
			ID: fmt.Sprintf("13.%d.1", i+1), Only: TargetServer, Offer: offer,
			Desc:   fmt.Sprintf("Offer %q, then send a text message of 4 KiB.", offer),
			Expect: "No extension in the 101; the message is echoed uncompressed.",
			Run: func(t *T) Result {
				if r := t.notNegotiated(); r != nil {
					return *r
				}
				p := []byte(strings.Repeat("Hello, deflate! ", 256))
				t.Send(Text(p))
				return t.Echo(WantText(p))
			},
		})
	}
	unsolicited := []string{
		"permessage-deflate",
		"permessage-deflate; server_no_context_takeover",
		"permessage-deflate; client_max_window_bits=8",
		"permessage-deflate; server_max_window_bits=10; client_no_context_takeover",
		"x-webkit-deflate-frame",
	}
	for i, ext := range unsolicited {
		cs = append(cs, &Case{
			ID: fmt.Sprintf("13.%d.1", i+1), Only: TargetClient, Lwsgate: true, RespondExt: ext,
			Desc:   fmt.Sprintf("Answer the client's upgrade with the unsolicited extension %q, then send a ping.", ext),
			Expect: "The client fails the link at the handshake: a 101 naming an extension the client did not offer MUST fail it (RFC 6455 section 4.1). No pong.",
			Run: func(t *T) Result {
				if r := t.notNegotiated(); r != nil {
					return *r
				}
				t.Send(Ping([]byte("accepted?")))
				r := t.ExpectFail(1002, 1010)
				if r.Verdict == Failed {
					return r
				}
				if err := t.dialErr(); err == nil {
					return failed("the link was failed, but the dial reported success")
				}
				return r
			},
		})
	}
	cs = append(cs, &Case{
		ID: "12.3.1", Only: TargetClient, Lwsgate: true,
		Desc:   "Send the client a text message with RSV1 set as if it were compressed (nothing negotiated).",
		Expect: "RSV1 fails the link (1002).",
		Run: func(t *T) Result {
			if r := t.notNegotiated(); r != nil {
				return *r
			}
			t.Send(Frame{Fin: true, Rsv: 4, Opcode: OpText, Payload: []byte{0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00}})
			return t.ExpectFail(1002)
		},
	})
	return cs
}
