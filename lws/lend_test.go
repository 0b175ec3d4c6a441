package lws

import (
	"bytes"
	"context"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// An echo of a message longer than batchFrameMax queues the buffer the
// message was assembled in (conn_rx.go, Conn.lent); these tests hold it to
// what a copy gave.

// TestLendEcho: echoes of every size around the threshold and up to 5
// MiB, text and binary, server and client side, come back whole; the long
// ones were lent (the link's assembly frame was taken), the short ones
// copied.
func TestLendEcho(t *testing.T) {
	type seen struct {
		n    int
		lent bool
	}
	srvSeen := make(chan seen, 64)
	echo := func(seenc chan seen) HandlerFuncs {
		return HandlerFuncs{Message: func(c *Conn, typ MessageType, data []byte) {
			had := c.rxf
			require.NoError(t, c.Send(typ, data))
			seenc <- seen{len(data), had != nil && c.rxf == nil}
		}}
	}
	_, addr := startServer(t, Listener{Handler: echo(srvSeen), MaxMessageSize: 8 << 20, MaxSendQueue: 64 << 20})
	cli := newClientContext(t)
	rec := newSink()
	conn, err := cli.Dial(context.Background(), "ws://"+addr+"/", &DialOptions{Handler: rec, MaxMessageSize: 8 << 20, MaxSendQueue: 64 << 20})
	require.NoError(t, err)
	rng := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{0, 1, batchFrameMax, batchFrameMax + 1, 64 << 10, 64<<10 + 1, 300 << 10, 5 << 20} {
		for _, typ := range []MessageType{BinaryMessage, TextMessage} {
			msg := make([]byte, n)
			for i := range msg {
				msg[i] = 'a' + byte(rng.IntN(26)) // valid UTF-8 for text
			}
			require.NoError(t, conn.Send(typ, msg))
			got := rec.next(t)
			require.Equal(t, typ, got.typ, "%d bytes", n)
			require.True(t, bytes.Equal(msg, got.data), "%d bytes %v: the echo differs", n, typ)
			s := <-srvSeen
			assert.Equal(t, n > batchFrameMax, s.lent, "%d bytes: lent", n)
		}
	}
	_ = conn.Close(StatusNormalClosure, "")
}

// TestLendSendTwiceAndElsewhere: a handler that sends the message back
// twice, then to another link, then a part of it: every copy is whole
// (the first Send takes the frame, the others copy from it).
func TestLendSendTwiceAndElsewhere(t *testing.T) {
	var other *Conn
	others := make(chan *Conn, 1)
	h := HandlerFuncs{
		Open: func(c *Conn) {
			if c.Link().Path == "/other" {
				others <- c
			}
		},
		Message: func(c *Conn, typ MessageType, data []byte) {
			if other == nil {
				other = <-others
			}
			require.NoError(t, c.Send(typ, data))
			require.NoError(t, c.Send(typ, data))
			require.NoError(t, other.Send(typ, data))
			require.NoError(t, c.Send(typ, data[1:]))
		},
	}
	_, addr := startServer(t, Listener{Handler: h})
	cli := newClientContext(t)
	orec := newSink()
	_, err := cli.Dial(context.Background(), "ws://"+addr+"/other", &DialOptions{Handler: orec})
	require.NoError(t, err)
	rec := newSink()
	conn, err := cli.Dial(context.Background(), "ws://"+addr+"/", &DialOptions{Handler: rec})
	require.NoError(t, err)
	msg := bytes.Repeat([]byte("0123456789abcdef"), 5000) // 80,000 bytes
	require.NoError(t, conn.Send(BinaryMessage, msg))
	for i, want := range [][]byte{msg, msg, msg[1:]} {
		assert.True(t, bytes.Equal(want, rec.next(t).data), "echo %d", i)
	}
	assert.True(t, bytes.Equal(msg, orec.next(t).data), "the other link's copy")
}

// TestLendRefusedSend: a Send refused because the link is closing gives
// the frame back to the message: data stays intact while the handler
// sends other messages of the same size (which would reuse the frame from
// its pool had it been released).
func TestLendRefusedSend(t *testing.T) {
	intact := make(chan bool, 1)
	h := HandlerFuncs{Message: func(c *Conn, typ MessageType, data []byte) {
		want := bytes.Clone(data)
		require.NoError(t, c.Close(StatusNormalClosure, "bye"))
		require.ErrorIs(t, c.Send(typ, data), ErrClosed)
		for range 4 {
			f := newFrame(len(data))
			for i := range f.buf {
				f.buf[i] = 'z'
			}
			f.release()
		}
		intact <- bytes.Equal(want, data) && c.rxf != nil
	}}
	_, addr := startServer(t, Listener{Handler: h})
	cli := newClientContext(t)
	conn, err := cli.Dial(context.Background(), "ws://"+addr+"/", &DialOptions{Handler: newSink()})
	require.NoError(t, err)
	require.NoError(t, conn.Send(BinaryMessage, bytes.Repeat([]byte{'m'}, 40<<10)))
	assert.True(t, <-intact, "the message's bytes after the refused Send")
}
