// Command gorillaecho is the gorilla/websocket reference server of the
// benchmark harness: every WebSocket message is echoed whole with its type,
// one goroutine per link (gorilla's idiom), and POST /v1/api/createtoken
// gets ref.Reply from net/http. Upgrader defaults otherwise.
package main

import (
	"io"
	"net/http"

	"github.com/gorilla/websocket"

	"github.com/lwsgate/lwsgate/bench/internal/ref"
)

func main() {
	ln := ref.Listen()
	up := websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if !websocket.IsWebSocketUpgrade(r) {
			http.NotFound(w, r)
			return
		}
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		for {
			typ, rd, err := c.NextReader()
			if err != nil {
				return // a close frame is answered by gorilla's close handler
			}
			wr, err := c.NextWriter(typ)
			if err != nil {
				return
			}
			if _, err := io.Copy(wr, rd); err != nil {
				return
			}
			if err := wr.Close(); err != nil {
				return
			}
		}
	})
	mux.HandleFunc("POST "+ref.CreateTokenPath, func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			http.Error(w, "bad body", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(ref.Reply(body))
	})
	_ = http.Serve(ln, mux)
}
