package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/lwsgate/lwsgate/lws"
)

// forwardMessage POSTs a WebSocket message to an http backend (the forward
// action) and sends the response body back to the link: as text when the
// backend says it is text or JSON, else binary. A failed or non-2xx answer
// becomes an error message. It runs on its own goroutine.
func (g *Gateway) forwardMessage(b *backend, l *LinkRecord, typ lws.MessageType, data []byte, rule string) {
	ctx, cancel := context.WithTimeout(context.Background(), b.cfg.Timeout.D())
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, b.cfg.URL, bytes.NewReader(data))
	if err != nil {
		g.replyError(l, rule, "forward: "+err.Error())
		return
	}
	ct := "application/octet-stream"
	if typ == lws.TextMessage {
		ct = "text/plain; charset=utf-8"
		if json.Valid(data) {
			ct = "application/json"
		}
	}
	b.hdrs.apply(req.Header, l.hdr)
	req.Header.Set("Content-Type", ct)
	req.Header.Set("X-Lwsgate-Link", strconv.FormatUint(l.ID, 10))
	if l.User != "" {
		req.Header.Set("X-Lwsgate-User", l.User)
	}
	if l.Remote != "" {
		req.Header.Set("X-Forwarded-For", clientIP(l.Remote))
	}
	start := time.Now()
	resp, err := b.http.Do(req)
	g.metrics.backendSeconds.WithLabelValues(b.cfg.Name, "forward").Observe(time.Since(start).Seconds())
	if err != nil {
		g.metrics.backendErrors.WithLabelValues(b.cfg.Name, "forward").Inc()
		g.log.Warn("forward failed", "link", l.ID, "backend", b.cfg.Name, "err", err)
		g.replyError(l, rule, "backend unavailable")
		return
	}
	defer resp.Body.Close()
	limit := g.maxMessage(l.Listener)
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	switch {
	case err != nil:
		g.metrics.backendErrors.WithLabelValues(b.cfg.Name, "forward").Inc()
		g.replyError(l, rule, "backend response: "+err.Error())
		return
	case int64(len(body)) > limit:
		g.metrics.backendErrors.WithLabelValues(b.cfg.Name, "forward").Inc()
		g.replyError(l, rule, "backend response too large")
		return
	case resp.StatusCode/100 != 2:
		g.metrics.backendErrors.WithLabelValues(b.cfg.Name, "forward").Inc()
		g.replyError(l, rule, fmt.Sprintf("backend answered %d", resp.StatusCode))
		return
	case resp.StatusCode == http.StatusNoContent || len(body) == 0:
		return
	}
	out := lws.BinaryMessage
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); strings.HasPrefix(mt, "text/") || mt == "application/json" {
		out = lws.TextMessage
	}
	if err := g.send(l, out, body); err != nil && !errors.Is(err, lws.ErrClosed) {
		g.log.Warn("forward reply failed", "link", l.ID, "err", err)
	}
}

// forwardHTTP sends an HTTP request under a listener's forward prefix to
// its http backend and returns the backend's response (httpconnect). It
// runs on its own goroutine.
func (g *Gateway) forwardHTTP(b *backend, w *lws.ResponseWriter, r *lws.Request, maxBody int64) {
	target := b.cfg.URL
	target = strings.TrimSuffix(target, "/") + r.Path
	if q := r.Query().Encode(); q != "" {
		target += "?" + q
	}
	ctx, cancel := context.WithTimeout(context.Background(), b.cfg.Timeout.D())
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, r.Method, target, bytes.NewReader(r.Body))
	if err != nil {
		g.forwardFail(w, r, http.StatusBadGateway, err)
		return
	}
	b.httpHdrs.apply(req.Header, r.Header())
	if ct := r.Header().Values("Content-Type"); len(ct) > 0 && len(r.Body) > 0 {
		req.Header["Content-Type"] = ct // the body's, whatever forward_headers says
	}
	if r.Remote != nil {
		req.Header.Set("X-Forwarded-For", clientIP(r.Remote.String()))
	}
	start := time.Now()
	resp, err := b.http.Do(req)
	g.metrics.backendSeconds.WithLabelValues(b.cfg.Name, "http").Observe(time.Since(start).Seconds())
	if err != nil {
		status := http.StatusBadGateway
		var de *lws.DialError
		if errors.As(err, &de) && de.Timeout() || errors.Is(err, context.DeadlineExceeded) {
			status = http.StatusGatewayTimeout
		}
		g.metrics.backendErrors.WithLabelValues(b.cfg.Name, "http").Inc()
		g.forwardFail(w, r, status, err)
		return
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil || int64(len(body)) > maxBody {
		if err == nil {
			err = fmt.Errorf("backend response over %d bytes", maxBody)
		}
		g.metrics.backendErrors.WithLabelValues(b.cfg.Name, "http").Inc()
		g.forwardFail(w, r, http.StatusBadGateway, err)
		return
	}
	hop := connectionNamed(resp.Header)
	for k, vs := range resp.Header {
		if !hopByHop(k) && !hop[k] && k != "Content-Length" {
			w.Header()[k] = vs
		}
	}
	if err := w.Respond(resp.StatusCode, body); err != nil && !errors.Is(err, lws.ErrClosed) {
		g.log.Warn("forward respond failed", "link", r.LinkID, "err", err)
	}
	g.log.Debug("forwarded", "link", r.LinkID, "method", r.Method, "path", r.Path, "backend", target, "status", resp.StatusCode)
}

func (g *Gateway) forwardFail(w *lws.ResponseWriter, r *lws.Request, status int, err error) {
	g.log.Warn("forward failed", "link", r.LinkID, "path", r.Path, "status", status, "err", err)
	w.Header().Set("Content-Type", "application/json")
	body := fmt.Sprintf(`{"code":%d,"error":%q}`, status, http.StatusText(status))
	_ = w.Respond(status, []byte(body))
}
