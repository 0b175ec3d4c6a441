package gateway

import (
	"bytes"
	"net/http"
	"net/url"

	"github.com/lwsgate/lwsgate/lws"
)

// serveNetHTTP serves an lws listener with a net/http Handler: each
// request runs h on its own goroutine (so h may block, e.g. on
// Context.LinkTrace) and its buffered response is sent when h returns.
// Streaming responses are not supported: fine for the admin API. h runs
// once started is closed.
func serveNetHTTP(started <-chan struct{}, h http.Handler) lws.HTTPHandler {
	return lws.HTTPHandlerFunc(func(w *lws.ResponseWriter, r *lws.Request) {
		u := &url.URL{Path: r.Path, RawQuery: r.Query().Encode()}
		req := &http.Request{
			Method:        r.Method,
			URL:           u,
			RequestURI:    u.RequestURI(),
			Proto:         "HTTP/1.1",
			ProtoMajor:    1,
			ProtoMinor:    1,
			Header:        r.Header(),
			Body:          http.NoBody,
			ContentLength: int64(len(r.Body)),
			Host:          r.Header().Get("Host"),
		}
		if len(r.Body) > 0 {
			req.Body = readCloser{bytes.NewReader(r.Body)}
		}
		if r.Remote != nil {
			req.RemoteAddr = r.Remote.String()
		}
		go func() {
			<-started
			bw := &bufferedWriter{header: http.Header{}}
			func() {
				defer func() {
					if p := recover(); p != nil {
						bw.header, bw.status, bw.body = http.Header{}, http.StatusInternalServerError, *bytes.NewBufferString("internal error\n")
					}
				}()
				h.ServeHTTP(bw, req)
			}()
			if bw.status == 0 {
				bw.status = http.StatusOK
			}
			for k, vs := range bw.header {
				w.Header()[k] = vs
			}
			_ = w.Respond(bw.status, bw.body.Bytes())
		}()
	})
}

type readCloser struct{ *bytes.Reader }

func (readCloser) Close() error { return nil }

// bufferedWriter is an http.ResponseWriter that keeps the response.
type bufferedWriter struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (b *bufferedWriter) Header() http.Header { return b.header }

func (b *bufferedWriter) WriteHeader(status int) {
	if b.status == 0 {
		b.status = status
	}
}

func (b *bufferedWriter) Write(p []byte) (int, error) {
	if b.status == 0 {
		b.status = http.StatusOK
	}
	return b.body.Write(p)
}
