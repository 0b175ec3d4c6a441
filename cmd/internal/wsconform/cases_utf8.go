package wsconform

import (
	"fmt"
	"time"
)

// utf8Group is one category of UTF-8 test sequences, after Markus Kuhn's
// "UTF-8 decoder capability and stress test", which Autobahn's 6.5-6.23
// follow. Each sequence is declared valid or invalid UTF-8 (RFC 3629: no
// surrogates, no overlong forms, nothing above U+10FFFF); TestUTF8Vectors
// checks the declarations against unicode/utf8.
type utf8Group struct {
	name string
	seqs []utf8Seq
}

type utf8Seq struct {
	valid bool
	s     string
}

// valid and invalid declare sequences.
func valid(ss ...string) []utf8Seq   { return seqs(true, ss) }
func invalid(ss ...string) []utf8Seq { return seqs(false, ss) }

func seqs(v bool, ss []string) []utf8Seq {
	out := make([]utf8Seq, len(ss))
	for i, s := range ss {
		out[i] = utf8Seq{v, s}
	}
	return out
}

// kosme is "κόσμε", the Greek word Kuhn's file opens with.
const kosme = "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5"

func utf8Groups() []utf8Group {
	// κόσμε's code points end after bytes 2, 5, 7, 9 and 11.
	var prefixes []utf8Seq
	for i := 1; i <= len(kosme); i++ {
		prefixes = append(prefixes, utf8Seq{valid: i == 2 || i == 5 || i == 7 || i == 9 || i == 11, s: kosme[:i]})
	}
	var cont []byte // every continuation byte but the last, in a row
	for b := 0x80; b < 0xbf; b++ {
		cont = append(cont, byte(b))
	}
	lonely := func(lo, hi int) string {
		var s []byte
		for b := lo; b < hi; b++ {
			s = append(s, byte(b), ' ')
		}
		return string(s)
	}
	missing := []string{
		"\xc0", "\xe0\x80", "\xf0\x80\x80", "\xf8\x80\x80\x80", "\xfc\x80\x80\x80\x80",
		"\xdf", "\xef\xbf", "\xf7\xbf\xbf", "\xfb\xbf\xbf\xbf", "\xfd\xbf\xbf\xbf\xbf",
	}
	var concat string
	for _, s := range missing {
		concat += s
	}
	nonchars := []string{"\xef\xbf\xbe", "\xef\xbf\xbf"}
	for _, b1 := range []byte{0xf0, 0xf1, 0xf2, 0xf3, 0xf4} {
		for _, b2 := range []byte{0x8f, 0x9f, 0xaf, 0xbf} {
			if b1 == 0xf4 && b2 != 0x8f {
				continue // above U+10FFFF
			}
			if b1 == 0xf0 && b2 == 0x8f {
				continue // overlong
			}
			for _, b4 := range []byte{0xbe, 0xbf} {
				nonchars = append(nonchars, string([]byte{b1, b2, 0xbf, b4}))
			}
		}
	}
	return []utf8Group{
		{"Some valid UTF-8 sequences", valid(
			"hello\x24world", "hello\xc2\xa2world", "hello\xe2\x82\xacworld", "hello\xf0\xa4\xad\xa2world", kosme,
		)},
		{"All prefixes of a valid UTF-8 string with multi-byte code points", prefixes},
		{"First possible sequence of a certain length", valid("\x00", "\xc2\x80", "\xe0\xa0\x80", "\xf0\x90\x80\x80")},
		{"First possible sequence of length 5 and 6 (invalid code points)", invalid("\xf8\x88\x80\x80\x80", "\xfc\x84\x80\x80\x80\x80")},
		{"Last possible sequence of a certain length", valid("\x7f", "\xdf\xbf", "\xef\xbf\xbf", "\xf4\x8f\xbf\xbf")},
		{"Last possible sequence of length 4, 5 and 6 (invalid code points)", invalid("\xf7\xbf\xbf\xbf", "\xfb\xbf\xbf\xbf\xbf", "\xfd\xbf\xbf\xbf\xbf\xbf")},
		{"Other boundary conditions", append(valid("\xed\x9f\xbf", "\xee\x80\x80", "\xef\xbf\xbd", "\xf4\x8f\xbf\xbf"), invalid("\xf4\x90\x80\x80")...)},
		{"Unexpected continuation bytes", invalid(
			"\x80", "\xbf", "\x80\xbf", "\x80\xbf\x80", "\x80\xbf\x80\xbf", "\x80\xbf\x80\xbf\x80", "\x80\xbf\x80\xbf\x80\xbf", string(cont),
		)},
		{"Lonely start bytes", invalid(lonely(0xc0, 0xdf), lonely(0xe0, 0xef), lonely(0xf0, 0xf7), lonely(0xf8, 0xfb), lonely(0xfc, 0xfd))},
		{"Sequences with the last continuation byte missing", invalid(missing...)},
		{"Concatenation of incomplete sequences", invalid(concat)},
		{"Impossible bytes", invalid("\xfe", "\xff", "\xfe\xfe\xff\xff")},
		{"Overlong ASCII character", invalid("\xc0\xaf", "\xe0\x80\xaf", "\xf0\x80\x80\xaf", "\xf8\x80\x80\x80\xaf", "\xfc\x80\x80\x80\x80\xaf")},
		{"Maximum overlong sequences", invalid("\xc1\xbf", "\xe0\x9f\xbf", "\xf0\x8f\xbf\xbf", "\xf8\x87\xbf\xbf\xbf", "\xfc\x83\xbf\xbf\xbf\xbf")},
		{"Overlong NUL", invalid("\xc0\x80", "\xe0\x80\x80", "\xf0\x80\x80\x80", "\xf8\x80\x80\x80\x80", "\xfc\x80\x80\x80\x80\x80")},
		{"Single UTF-16 surrogates", invalid(
			"\xed\xa0\x80", "\xed\xad\xbf", "\xed\xae\x80", "\xed\xaf\xbf", "\xed\xb0\x80", "\xed\xbe\x80", "\xed\xbf\xbf",
		)},
		{"Paired UTF-16 surrogates", invalid(
			"\xed\xa0\x80\xed\xb0\x80", "\xed\xa0\x80\xed\xbf\xbf", "\xed\xad\xbf\xed\xb0\x80", "\xed\xad\xbf\xed\xbf\xbf",
			"\xed\xae\x80\xed\xb0\x80", "\xed\xae\x80\xed\xbf\xbf", "\xed\xaf\xbf\xed\xb0\x80", "\xed\xaf\xbf\xed\xbf\xbf",
		)},
		{"Non-characters (valid UTF-8)", valid(nonchars...)},
		{"Unicode specials, such as the replacement character", valid(
			"\xef\xbf\xb9", "\xef\xbf\xba", "\xef\xbf\xbb", "\xef\xbf\xbc", "\xef\xbf\xbd", "\xef\xbf\xbe", "\xef\xbf\xbf",
		)},
	}
}

// failFastWait bounds the waits that nothing but time can end: for a link
// failed in the middle of a frame (6.4.3, 6.4.4: nothing else shows that
// the implementation checked the bytes it had, so on expiry the case goes
// on and can only be NON-STRICT), and for pongs still missing after the
// echo of a message sent after their pings (2.10, 2.11).
func (t *T) failFastWait() time.Duration { return min(t.opts.Wait, time.Second) }

func utf8Cases() []*Case {
	hello := "Hello-\u00b5@\u00df\u00f6\u00e4\u00fc\u00e0\u00e1-UTF-8!!"
	oneByteFrames := func(s string) []Frame { return Fragments(OpText, []byte(s), 1) }
	cs := []*Case{
		{
			ID: "6.1.1", Desc: "Send a text message of length 0.", Expect: "An empty text message is echoed.",
			Run: func(t *T) Result { t.Send(Text(nil)); return t.Echo(WantText(nil)) },
		},
		{
			ID: "6.1.2", Desc: "Send a text message in 3 fragments of length 0.", Expect: "An empty text message is echoed.",
			Run: func(t *T) Result {
				t.SendJoined(Frame{Opcode: OpText}, Frame{Opcode: OpContinuation}, Frame{Fin: true, Opcode: OpContinuation})
				return t.Echo(WantText(nil))
			},
		},
		{
			ID: "6.1.3", Desc: "Send a text message in 3 fragments, the first and last of length 0.", Expect: "The middle fragment's payload is echoed.",
			Run: func(t *T) Result {
				mid := []byte("middle frame payload")
				t.SendJoined(Frame{Opcode: OpText}, Frame{Opcode: OpContinuation, Payload: mid}, Frame{Fin: true, Opcode: OpContinuation})
				return t.Echo(WantText(mid))
			},
		},
		{
			ID: "6.2.1", Desc: "Send a valid UTF-8 text message in one frame.", Expect: "The message is echoed.",
			Run: func(t *T) Result { t.Send(Text([]byte(hello))); return t.Echo(WantText([]byte(hello))) },
		},
		{
			ID: "6.2.2", Desc: "Send a valid UTF-8 text message in 2 fragments, cut on a code point boundary.", Expect: "The message is echoed.",
			Run: func(t *T) Result {
				t.SendJoined(Frame{Opcode: OpText, Payload: []byte(hello[:15])}, Frame{Fin: true, Opcode: OpContinuation, Payload: []byte(hello[15:])})
				return t.Echo(WantText([]byte(hello)))
			},
		},
		{
			ID: "6.2.3", Desc: "Send a valid UTF-8 text message in fragments of 1 byte, most ending inside a code point.", Expect: "The message is echoed.",
			Run: func(t *T) Result { t.SendJoined(oneByteFrames(hello)...); return t.Echo(WantText([]byte(hello))) },
		},
		{
			ID: "6.2.4", Desc: "Send a valid UTF-8 text message (κόσμε) in fragments of 1 byte.", Expect: "The message is echoed.",
			Run: func(t *T) Result { t.SendJoined(oneByteFrames(kosme)...); return t.Echo(WantText([]byte(kosme))) },
		},
	}
	invalid := kosme + "\xed\xa0\x80" + "edited"
	cs = append(cs,
		&Case{
			ID: "6.3.1", Desc: "Send an invalid UTF-8 text message (a surrogate) in one frame.",
			Expect: "The link is failed (1007): text MUST be valid UTF-8 (RFC 6455 section 8.1).",
			Run:    func(t *T) Result { t.Send(Text([]byte(invalid))); return t.ExpectFail(1007) },
		},
		&Case{
			ID: "6.3.2", Desc: "Send the invalid UTF-8 text message of 6.3.1 in fragments of 1 byte.",
			Expect: "The link is failed (1007).",
			Run:    func(t *T) Result { t.SendJoined(oneByteFrames(invalid)...); return t.ExpectFail(1007) },
		},
	)
	// 6.4.x: the message turns invalid in its second part; the third
	// part is valid again. Fail-fast means failing on the second part.
	full := kosme + "\xf4\x90\x80\x80" + "edited"
	splits := [][3]string{
		{kosme, "\xf4\x90\x80\x80", "edited"}, // the invalid code point whole
		{full[:12], full[12:13], full[13:]},   // up to the byte that makes it invalid
	}
	for i, parts := range splits {
		cs = append(cs, &Case{
			ID:     fmt.Sprintf("6.4.%d", 1+i),
			Desc:   fmt.Sprintf("Send an invalid UTF-8 text message in 3 frames %x | %x | %x, with a ping after each of the first two.", parts[0], parts[1], parts[2]),
			Expect: "The first frame is accepted (its ping is answered); the second fails the link (1007) before its ping is answered. Failing only at the end of the message is NON-STRICT.",
			Run: func(t *T) Result {
				t.SendJoined(Frame{Opcode: OpText, Payload: []byte(parts[0])}, Ping([]byte("A")))
				if r := t.expect(WantPong([]byte("A"))); r != nil {
					return *r
				}
				t.SendJoined(Frame{Opcode: OpContinuation, Payload: []byte(parts[1])}, Ping([]byte("B")))
				e := t.Next()
				if e.Kind != EvPong {
					t.p.unread(e)
					return t.ExpectFail(1007)
				}
				t.Send(Frame{Fin: true, Opcode: OpContinuation, Payload: []byte(parts[2])})
				r := t.ExpectFail(1007)
				if r.Verdict == Failed {
					return r
				}
				return nonStrict("invalid UTF-8 detected at the end of the message, not in the fragment that made it invalid (fail-fast is a SHOULD-like expectation of Autobahn; RFC 6455 section 8.1 only requires failing)")
			},
		})
	}
	for i, parts := range splits {
		cs = append(cs, &Case{
			ID:     fmt.Sprintf("6.4.%d", 3+i),
			Desc:   fmt.Sprintf("As 6.4.%d, but as one frame written in 3 parts.", 1+i),
			Expect: "The link is failed (1007) once the second part arrived, before the rest of the frame. Failing only at the end of the frame is NON-STRICT.",
			Run: func(t *T) Result {
				b := t.Encode(Text([]byte(full)))
				hdr := len(b) - len(full)
				n1 := hdr + len(parts[0])
				n2 := n1 + len(parts[1])
				t.SendRaw(b[:n1])
				t.SendRaw(b[n1:n2])
				e := t.NextWithin(t.failFastWait())
				if e.Kind != EvTimeout {
					t.p.unread(e)
					return t.ExpectFail(1007)
				}
				t.SendRaw(b[n2:])
				r := t.ExpectFail(1007)
				if r.Verdict == Failed {
					return r
				}
				return nonStrict("the link was not failed within %v of the invalid part; it was when the frame ended (fail-fast is Autobahn's expectation; RFC 6455 section 8.1 only requires failing)", t.failFastWait())
			},
		})
	}
	for gi, g := range utf8Groups() {
		for i, seq := range g.seqs {
			payload := []byte(seq.s)
			c := &Case{ID: fmt.Sprintf("6.%d.%d", 5+gi, i+1)}
			if seq.valid {
				c.Desc = fmt.Sprintf("%s: send the valid UTF-8 text message %x in one frame.", g.name, payload)
				c.Expect = "The message is echoed."
				c.Run = func(t *T) Result { t.Send(Text(payload)); return t.Echo(WantText(payload)) }
			} else {
				c.Desc = fmt.Sprintf("%s: send the invalid UTF-8 text message %x in one frame.", g.name, payload)
				c.Expect = "The link is failed (1007)."
				c.Run = func(t *T) Result { t.Send(Text(payload)); return t.ExpectFail(1007) }
			}
			cs = append(cs, c)
		}
	}
	return cs
}
