// Command gwsecho is the lxzan/gws reference server of the benchmark
// harness: gws's Upgrader on net/http (so that the same port serves the
// HTTP POST), a ReadLoop goroutine per link, every message echoed whole with
// its opcode (gws's echo example, without compression), and POST
// /v1/api/createtoken answered with ref.Reply. ServerOption defaults
// otherwise.
package main

import (
	"io"
	"net/http"

	"github.com/lxzan/gws"

	"github.com/lwsgate/lwsgate/bench/internal/ref"
)

type echo struct{ gws.BuiltinEventHandler }

func (echo) OnPing(c *gws.Conn, payload []byte) { _ = c.WritePong(payload) }

func (echo) OnMessage(c *gws.Conn, m *gws.Message) {
	defer m.Close()
	_ = c.WriteMessage(m.Opcode, m.Bytes())
}

func main() {
	ln := ref.Listen()
	up := gws.NewUpgrader(echo{}, &gws.ServerOption{})
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r)
		if err != nil {
			return
		}
		go c.ReadLoop()
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
