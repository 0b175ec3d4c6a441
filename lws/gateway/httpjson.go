package gateway

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// What the gateway's two HTTP stacks share: the public listeners' lws
// handler (publicAPI, on the service goroutine) and the admin listener's
// net/http one (adminHandler, on its own goroutines) answer errors, the
// health probes and link IDs alike.

// apiError is the JSON of an error answer: {"code":404,"error":"..."}.
type apiError struct {
	Code  int    `json:"code"`
	Error string `json:"error"`
}

// probe answers the health probes, which both stacks serve: /healthz (the
// process is up, and the sizes of its tables) and /readyz (it takes new
// links: 503 while draining or cut off from the cluster). ok is false for any other path.
func (g *Gateway) probe(path string) (status int, body any, ok bool) {
	switch path {
	case "/healthz":
		return http.StatusOK, map[string]any{"status": "ok", "ready": g.Ready(), "links": g.links.len(), "routes": g.routes.len(), "channels": g.hub.len()}, true
	case "/readyz":
		if why := g.unready(); why != "" {
			return http.StatusServiceUnavailable, map[string]any{"ready": false, "reason": why}, true
		}
		return http.StatusOK, map[string]any{"ready": true}, true
	}
	return 0, nil, false
}

// marshalJSON encodes an answer: the status and body to send. A value
// that does not encode is answered 500.
func marshalJSON(status int, v any) (int, []byte) {
	body, err := json.Marshal(v)
	if err != nil {
		return http.StatusInternalServerError, []byte(`{"code":500,"error":"encoding failed"}`)
	}
	return status, body
}

// parseID parses a link ID: a positive integer.
func parseID(s string) (uint64, bool) {
	id, err := strconv.ParseUint(s, 10, 64)
	return id, err == nil && id > 0
}
