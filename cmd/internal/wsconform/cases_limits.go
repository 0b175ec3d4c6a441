package wsconform

import (
	"fmt"
	"math/rand/v2"
)

// The 9.x cases are Autobahn's, scaled down to keep a run short: message
// sizes are a quarter of Autobahn's (16 KiB to 4 MiB instead of 64 KiB to
// 16 MiB), the fragmented messages 1 MiB instead of 4 MiB, the chopped ones
// 256 KiB instead of 1 MiB, and the round-trip series 250 messages instead
// of 1000. 9.10.x are lwsgate's: the implementation's message size limit.

func sizeName(n int) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}

// payloadFor returns n bytes for a message of type op: printable text, or
// random binary.
func payloadFor(op byte, n int) []byte {
	b := make([]byte, n)
	if op == OpText {
		for i := range b {
			b[i] = '*'
		}
		return b
	}
	var seed [32]byte
	seed[0], seed[1], seed[2], seed[3] = byte(n), byte(n>>8), byte(n>>16), byte(n>>24)
	_, _ = rand.NewChaCha8(seed).Read(b)
	return b
}

func limitCases() []*Case {
	var cs []*Case
	types := []struct {
		name string
		op   byte
	}{{"text", OpText}, {"binary", OpBinary}}
	for ti, typ := range types {
		for i, n := range []int{16 << 10, 64 << 10, 256 << 10, 1 << 20, 2 << 20, 4 << 20} {
			cs = append(cs, &Case{
				ID:     fmt.Sprintf("9.%d.%d", 1+ti, i+1),
				Desc:   fmt.Sprintf("Send a %s message of %s in one frame.", typ.name, sizeName(n)),
				Expect: "The message is echoed.",
				Run: func(t *T) Result {
					p := payloadFor(typ.op, n)
					t.Send(Frame{Fin: true, Opcode: typ.op, Payload: p})
					return t.Echo(Want{Kind: EvMessage, Op: typ.op, Data: p})
				},
			})
		}
	}
	for ti, typ := range types {
		for i, frag := range []int{64, 256, 1 << 10, 4 << 10, 16 << 10, 64 << 10, 256 << 10, 512 << 10, 1 << 20} {
			cs = append(cs, &Case{
				ID:     fmt.Sprintf("9.%d.%d", 3+ti, i+1),
				Desc:   fmt.Sprintf("Send a %s message of 1 MiB in fragments of %s.", typ.name, sizeName(frag)),
				Expect: "The message is echoed.",
				Run: func(t *T) Result {
					p := payloadFor(typ.op, 1<<20)
					t.SendJoined(Fragments(typ.op, p, frag)...)
					return t.Echo(Want{Kind: EvMessage, Op: typ.op, Data: p})
				},
			})
		}
	}
	for ti, typ := range types {
		for i, chop := range []int{64, 128, 256, 512, 1024, 2048} {
			cs = append(cs, &Case{
				ID:     fmt.Sprintf("9.%d.%d", 5+ti, i+1),
				Desc:   fmt.Sprintf("Send a %s message of 256 KiB in one frame, in writes of %d bytes.", typ.name, chop),
				Expect: "The message is echoed.",
				Run: func(t *T) Result {
					p := payloadFor(typ.op, 256<<10)
					t.SendChopped(chop, Frame{Fin: true, Opcode: typ.op, Payload: p})
					return t.Echo(Want{Kind: EvMessage, Op: typ.op, Data: p})
				},
			})
		}
	}
	for ti, typ := range types {
		for i, n := range []int{0, 16, 64, 256, 1 << 10, 4 << 10} {
			cs = append(cs, &Case{
				ID:     fmt.Sprintf("9.%d.%d", 7+ti, i+1),
				Desc:   fmt.Sprintf("Send 250 %s messages of %s, each after the echo of the one before.", typ.name, sizeName(n)),
				Expect: "Every message is echoed.",
				Run: func(t *T) Result {
					p := payloadFor(typ.op, n)
					for k := range 250 {
						t.Send(Frame{Fin: true, Opcode: typ.op, Payload: p})
						if r := t.expect(Want{Kind: EvMessage, Op: typ.op, Data: p}); r != nil {
							r.Detail = fmt.Sprintf("message %d: %s", k+1, r.Detail)
							return *r
						}
					}
					return t.CloseNormally()
				},
			})
		}
	}
	cs = append(cs,
		&Case{
			ID: "9.10.1", Lwsgate: true,
			Desc:   "Send a binary message of exactly the implementation's size limit (Options.MaxMessage).",
			Expect: "The message is echoed.",
			Run: func(t *T) Result {
				p := payloadFor(OpBinary, int(t.opts.MaxMessage))
				t.SendJoined(Fragments(OpBinary, p, 64<<10)...)
				return t.Echo(WantBinary(p))
			},
		},
		&Case{
			ID: "9.10.2", Lwsgate: true,
			Desc:   "Send a binary message one byte over the limit, in one frame.",
			Expect: "The link is failed with 1009 (message too big).",
			Run: func(t *T) Result {
				t.Send(Binary(payloadFor(OpBinary, int(t.opts.MaxMessage)+1)))
				return t.ExpectFailStrict(1009)
			},
		},
		&Case{
			ID: "9.10.3", Lwsgate: true,
			Desc:   "Send a binary message one byte over the limit, in fragments of 64 KiB.",
			Expect: "The link is failed with 1009 (message too big).",
			Run: func(t *T) Result {
				t.SendJoined(Fragments(OpBinary, payloadFor(OpBinary, int(t.opts.MaxMessage)+1), 64<<10)...)
				return t.ExpectFailStrict(1009)
			},
		},
	)
	return cs
}
