package wsconform

import (
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"strings"
)

// The 12.x/13.x cases are Autobahn's permessage-deflate families (RFC
// 7692), run one of two ways (Options.Deflate):
//
//   - For an implementation that does not enable the extension, it must be
//     declined cleanly. As a server the implementation must answer offers
//     without Sec-WebSocket-Extensions and go on uncompressed; as a client
//     it must not offer it, and must fail a link whose server claims an
//     extension it did not ask for (RFC 6455 section 4.1). Both must fail a
//     link on a frame with RSV1 set, which only a negotiated extension
//     allows.
//   - For one that enables it, it must be agreed validly (RFC 7692 section
//     7: a server's answer must accept one of the offers with parameters
//     the offer allows; a client's offer must be well-formed, and a client
//     must fail a link whose answer does not accept its offer), and then
//     used: the peer sends compressed messages, honouring the agreed
//     context takeover and window parameters, and inflates the echoes,
//     each on its own where the implementation agreed to no context
//     takeover. The peer cannot check the window size the implementation
//     compresses with (see deflate.go).

// defaultOffer is the offer Autobahn's 12.x cases make.
const defaultOffer = "permessage-deflate; client_no_context_takeover; client_max_window_bits"

// notNegotiated checks the handshake: no extension agreed (TargetServer),
// none offered (TargetClient).
func (t *T) notNegotiated() *Result {
	if t.target == TargetServer {
		if ext := t.resp.Header.Values("Sec-WebSocket-Extensions"); len(ext) > 0 {
			r := failed("the server accepted extensions %q: this suite runs without Options.Deflate, for an implementation that does not enable permessage-deflate", strings.Join(ext, ", "))
			return &r
		}
		return nil
	}
	if ext := t.req.Header.Values("Sec-WebSocket-Extensions"); len(ext) > 0 {
		r := failed("the client offered extensions %q: this suite runs without Options.Deflate, for an implementation that does not enable permessage-deflate", strings.Join(ext, ", "))
		return &r
	}
	return nil
}

// send sends msg as one message: compressed if the handshake agreed
// permessage-deflate, in frames of at most frag bytes (<= 0: one frame).
func (t *T) send(op byte, msg []byte, frag int) {
	if t.Deflated() {
		t.Send(t.Compressed(op, msg, frag)...)
		return
	}
	t.Send(Fragments(op, msg, frag)...)
}

// then keeps a NON-STRICT verdict found earlier unless r is worse.
// negotiation checks the handshake of a deflate case: without
// Options.Deflate that nothing was negotiated, with it that the agreement
// is valid. stop is the case's verdict when it cannot go on; pre, a
// verdict short of OK to report if the rest passes (see then).
func (t *T) negotiation(mayDecline bool) (pre, stop *Result) {
	if !t.opts.Deflate {
		return nil, t.notNegotiated()
	}
	pre = t.agreed(mayDecline)
	if pre != nil && pre.Verdict == Failed {
		return nil, pre
	}
	return pre, nil
}

func then(pre *Result, r Result) Result {
	if pre != nil && r.Verdict == OK {
		return *pre
	}
	return r
}

// textFor is n bytes of text that deflate shrinks by about a quarter:
// base64 of pseudo-random bytes.
func textFor(n int) []byte {
	raw := make([]byte, n)
	_, _ = rand.NewChaCha8([32]byte{byte(n), byte(n >> 8), 7}).Read(raw)
	return []byte(base64.StdEncoding.EncodeToString(raw)[:n])
}

// hello is "Hello" compressed without context takeover, the example of
// RFC 7692 section 7.2.3.1.
var hello = []byte{0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00}

// autobahnSizes are Autobahn's MSG_SIZES for 12.x and 13.x: the payload
// size of each message and the size of the frames it is sent in (0: one
// frame), for subcases 1 to 18. Autobahn sends 1000 messages per case;
// this suite sends Options.Messages.
var autobahnSizes = []struct{ size, frag int }{
	{16, 0}, {64, 0}, {256, 0}, {1 << 10, 0}, {4 << 10, 0}, {8 << 10, 0}, {16 << 10, 0}, {32 << 10, 0}, {64 << 10, 0}, {128 << 10, 0},
	{8 << 10, 256}, {16 << 10, 256}, {32 << 10, 256}, {64 << 10, 256}, {128 << 10, 256},
	{128 << 10, 1 << 10}, {128 << 10, 4 << 10}, {128 << 10, 32 << 10},
}

// autobahnOffers are the client offers of 13.1 to 13.7 as Autobahn sends
// them, with what Autobahn names each (requestNoContextTakeover,
// requestMaxWindowBits). Those asking for a server window may be declined:
// a server that cannot name a window in its answer must (see agreed).
var autobahnOffers = []struct {
	name, offer string
	mayDecline  bool
}{
	{"(False, 0)", defaultOffer, false},
	{"(True, 0)", defaultOffer + "; server_no_context_takeover", false},
	{"(False, 8)", defaultOffer + "; server_max_window_bits=8", true},
	{"(False, 15)", defaultOffer + "; server_max_window_bits=15", true},
	{"(True, 8)", defaultOffer + "; server_no_context_takeover; server_max_window_bits=8", true},
	{"(True, 15)", defaultOffer + "; server_no_context_takeover; server_max_window_bits=15", true},
	{"(True, 8), (True, 0), (False, 0)", defaultOffer + "; server_no_context_takeover; server_max_window_bits=8, " +
		defaultOffer + "; server_no_context_takeover, " + defaultOffer, false},
}

// autobahnAnswer is Autobahn's server acceptance for 13.j, j from 1 to 7
// (accept1 to accept7 in its case12_x_x.py), given the client's offers: the
// first valid permessage-deflate offer, accepted with what it asks of the
// server, and asking of the client no context takeover and a window of 8
// or 15 bits as the case says, the window only when the offer allows it
// (it has client_max_window_bits). "": no acceptance (Autobahn's None).
func autobahnAnswer(j int, offerValue string) string {
	offers, _ := parseDeflate(offerValue)
	var o deflateParams
	for _, x := range offers {
		if x != nil && checkOffer("permessage-deflate"+x.String()) == "" {
			o = x
			break
		}
	}
	if o == nil {
		return ""
	}
	base := "permessage-deflate"
	if _, ok := o["server_no_context_takeover"]; ok {
		base += "; server_no_context_takeover"
	}
	if v, ok := o["server_max_window_bits"]; ok {
		base += "; server_max_window_bits=" + v
	}
	_, windowed := o["client_max_window_bits"]
	answer := func(noTakeover bool, bits int) string {
		if bits != 0 && !windowed {
			return ""
		}
		a := base
		if noTakeover {
			a += "; client_no_context_takeover"
		}
		if bits != 0 {
			a += fmt.Sprintf("; client_max_window_bits=%d", bits)
		}
		return a
	}
	switch j {
	case 1:
		return base
	case 2:
		return answer(true, 0)
	case 3:
		return answer(false, 8)
	case 4:
		return answer(false, 15)
	case 5:
		return answer(true, 8)
	case 6:
		return answer(true, 15)
	}
	if a := answer(true, 8); a != "" {
		return a
	}
	return answer(true, 0)
}

// roundTrips plays Autobahn's 12.x/13.x cases after the handshake: one
// message after another of data's next n bytes, sent in frames of frag
// bytes of (compressed) payload, each after the echo of the one before.
func roundTrips(c corpus, n, frag int, mayDecline bool) func(t *T) Result {
	return func(t *T) Result {
		pre, stop := t.negotiation(mayDecline)
		if stop != nil {
			return *stop
		}
		data, pos := c.data(), 0
		count := t.opts.messages()
		for i := range count {
			msg := slice(data, &pos, n)
			t.send(c.op, msg, frag)
			if r := t.expect(Want{Kind: EvMessage, Op: c.op, Data: msg}); r != nil {
				r.Detail = fmt.Sprintf("message %d of %d: %s", i+1, count, r.Detail)
				return *r
			}
		}
		return then(pre, t.CloseNormally())
	}
}

func roundTripsDesc(c corpus, n, frag int) string {
	in := "one frame each"
	if frag > 0 {
		in = fmt.Sprintf("frames of %s of payload", sizeName(frag))
	}
	kind := "binary"
	if c.op == OpText {
		kind = "text"
	}
	return fmt.Sprintf("send %s messages of %s of %s, in %s, compressed when agreed, each after the echo of the last (Autobahn: 1000; here Options.Messages).",
		kind, sizeName(n), c.name, in)
}

const roundTripsExpect = "Without Options.Deflate: permessage-deflate is not negotiated (server: no Sec-WebSocket-Extensions in the 101; client: no offer); the messages are echoed uncompressed (RSV1 clear). " +
	"With it: agreed validly (RFC 7692 section 7), or, where the offer asks for a server window, declined; every echo inflates to its message, on its own where no context takeover was agreed."

func deflateCases() []*Case {
	var cs []*Case
	// 12.1-12.5: Autobahn's default offer, each data set at each size.
	for j, c := range corpora {
		for i, sz := range autobahnSizes {
			cs = append(cs, &Case{
				ID:     fmt.Sprintf("12.%d.%d", j+1, i+1),
				Offer:  defaultOffer,
				Desc:   fmt.Sprintf("Offer %q (as a client; as a server, accept the client's first offer), then %s", defaultOffer, roundTripsDesc(c, sz.size, sz.frag)),
				Expect: roundTripsExpect,
				Run:    roundTrips(c, sz.size, sz.frag, false),
			})
		}
	}
	// 13.1-13.7: the JSON data set at each size, with each of Autobahn's
	// offers (server target) and acceptances (client target).
	for j, o := range autobahnOffers {
		for i, sz := range autobahnSizes {
			id := fmt.Sprintf("13.%d.%d", j+1, i+1)
			cs = append(cs, &Case{
				ID: id, Only: TargetServer, Offer: o.offer,
				Desc:   fmt.Sprintf("Offer %s: %q, then %s", o.name, o.offer, roundTripsDesc(corpora[3], sz.size, sz.frag)),
				Expect: roundTripsExpect,
				Run:    roundTrips(corpora[3], sz.size, sz.frag, o.mayDecline),
			}, &Case{
				ID: id, Only: TargetClient, Accept: func(offer string) string { return autobahnAnswer(j+1, offer) },
				Desc:   fmt.Sprintf("Answer the client's offer as Autobahn's accept%d does (%s asked of the client), then %s", j+1, o.name, roundTripsDesc(corpora[3], sz.size, sz.frag)),
				Expect: roundTripsExpect,
				Run:    roundTrips(corpora[3], sz.size, sz.frag, false),
			})
		}
	}
	for _, target := range []Target{TargetServer, TargetClient} {
		offer := ""
		if target == TargetServer {
			offer = defaultOffer
		}
		cs = append(cs, &Case{
			ID: "12.6.1", Only: target, Offer: offer, Lwsgate: true,
			Desc: "Send a text message with RSV1 set: \"Hello\" compressed (RFC 7692 section 7.2.3.1), having offered permessage-deflate as a client (server target).",
			Expect: "Without Options.Deflate: not negotiated, so RSV1 fails the link (1002). " +
				"With it: agreed, and the message is echoed as \"Hello\".",
			Run: func(t *T) Result {
				pre, stop := t.negotiation(false)
				if stop != nil {
					return *stop
				}
				t.Send(Frame{Fin: true, Rsv: 4, Opcode: OpText, Payload: hello})
				if !t.Deflated() {
					return then(pre, t.ExpectFail(1002))
				}
				return then(pre, t.Echo(WantText([]byte("Hello"))))
			},
		})
	}
	for i, frag := range []int{125, 1 << 10, 16 << 10} {
		cs = append(cs, &Case{
			ID: fmt.Sprintf("12.7.%d", i+1), Lwsgate: true, Offer: defaultOffer,
			Desc: fmt.Sprintf("Offer permessage-deflate (%q, as a client), then send a 64 KiB text message of base64 text, compressed when agreed, in frames of %s.", defaultOffer, sizeName(frag)),
			Expect: "Without Options.Deflate: not negotiated, and the fragmented message is echoed uncompressed. " +
				"With it: agreed validly, and the echo inflates to the message.",
			Run: func(t *T) Result {
				pre, stop := t.negotiation(false)
				if stop != nil {
					return *stop
				}
				p := textFor(64 << 10)
				t.send(OpText, p, frag)
				return then(pre, t.Echo(WantText(p)))
			},
		})
	}
	offers := []struct {
		offer string
		// mayDecline: an implementation with the extension may decline
		// the offer without a NON-STRICT verdict (it asks for a server
		// window, which a server that cannot name one must decline).
		mayDecline bool
	}{
		{"permessage-deflate", false},
		{"permessage-deflate; client_no_context_takeover", false},
		{"permessage-deflate; client_max_window_bits=8", false},
		{"permessage-deflate; server_max_window_bits=9", true},
		{"permessage-deflate; server_no_context_takeover; client_no_context_takeover", false},
		{"permessage-deflate; client_max_window_bits=15; server_max_window_bits=15", true},
		{"permessage-deflate; server_max_window_bits=8, permessage-deflate; client_max_window_bits, permessage-deflate", false},
		{"permessage-deflate; server_no_context_takeover", false},
		{"permessage-deflate, permessage-deflate; client_max_window_bits", false},
		{"permessage-deflate, permessage-deflate", false},
		{"permessage-deflate;\tserver_no_context_takeover;\tclient_max_window_bits", false},
		{"x-unknown; a=" + strings.Repeat("b", 280) + ", permessage-deflate; client_no_context_takeover", false},
		{strings.Repeat("permessage-deflate; client_max_window_bits=10, ", 8) + "permessage-deflate", false},
		{"permessage-deflate; x-unknown, permessage-deflate; server_max_window_bits=16, permessage-deflate; client_no_context_takeover=1", true},
		{strings.Repeat("permessage-deflate; client_max_window_bits=10, ", 9) + "permessage-deflate", false},
	}
	for i, o := range offers {
		cs = append(cs, &Case{
			ID: fmt.Sprintf("13.%d.1", 8+i), Only: TargetServer, Offer: o.offer, Lwsgate: true,
			Desc: fmt.Sprintf("Offer %q (%d bytes), then send a text message of 4 KiB, twice: the second, compressed with context takeover unless the offer excludes it, refers back to the first.", o.offer, len(o.offer)),
			Expect: "Without Options.Deflate: a 101 with no extension; the messages are echoed uncompressed. " +
				"With it: the 101 accepts one of the offers validly (or declines them all: NON-STRICT unless each acceptable offer asks for a server window), and both echoes inflate to the message, each on its own if the server agreed to server_no_context_takeover.",
			Run: func(t *T) Result {
				pre, stop := t.negotiation(o.mayDecline)
				if stop != nil {
					return *stop
				}
				p := []byte(strings.Repeat("Hello, deflate! ", 256))
				t.send(OpText, p, 0)
				if !t.opts.Deflate {
					return t.Echo(WantText(p))
				}
				t.send(OpText, p, 0)
				return then(pre, t.Echo(WantText(p), WantText(p)))
			},
		})
	}
	answers := []string{
		"permessage-deflate",
		"permessage-deflate; server_no_context_takeover",
		"permessage-deflate; client_max_window_bits=8",
		"permessage-deflate; server_max_window_bits=10; client_no_context_takeover",
		"x-webkit-deflate-frame",
	}
	for i, ext := range answers {
		cs = append(cs, &Case{
			ID: fmt.Sprintf("13.%d.1", 8+i), Only: TargetClient, Lwsgate: true, RespondExt: ext,
			Desc: fmt.Sprintf("Answer the client's upgrade with the extension %q, then send a ping (without Options.Deflate), or a text message of 4 KiB twice, compressed as agreed (with it).", ext),
			Expect: "Without Options.Deflate: the client fails the link at the handshake: a 101 naming an extension the client did not offer MUST fail it (RFC 6455 section 4.1); no pong. " +
				"With it: the client's offer is valid, and when the answer accepts it validly (RFC 7692 section 7.1) the echoes inflate to the message, each on its own if the client must not use context takeover; when it does not, the client fails the link as above.",
			Run: func(t *T) Result {
				if t.opts.Deflate {
					if r := t.agreed(false); r != nil {
						return *r
					}
					if t.Deflated() {
						p := []byte(strings.Repeat("Hello, deflate! ", 256))
						t.send(OpText, p, 0)
						t.send(OpText, p, 0)
						return t.Echo(WantText(p), WantText(p))
					}
				} else if r := t.notNegotiated(); r != nil {
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
	return cs
}
