package lws

import (
	"bytes"
	"testing"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestEchoSizes(t *testing.T) {
	_, addr := startServer(t, Listener{Handler: EchoHandler{}, MaxMessageSize: 16<<20 + 1})
	ws := dial(t, addr, nil)
	for _, n := range []int{0, 125, 126, 64 << 10, 16 << 20} {
		for _, typ := range []int{websocket.BinaryMessage, websocket.TextMessage} {
			msg := bytes.Repeat([]byte("abcdefghij"), n/10+1)[:n]
			require.NoError(t, ws.WriteMessage(typ, msg))
			gt, got, err := ws.ReadMessage()
			require.NoError(t, err, "size %d", n)
			assert.Equal(t, typ, gt, "size %d", n)
			assert.True(t, bytes.Equal(msg, got), "size %d: echo differs (got %d bytes)", n, len(got))
		}
	}
}
