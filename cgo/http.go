package cgo

/*
#include "shim.h"
*/
import "C"

import (
	"errors"
	"unsafe"
)

// The HTTP server's side of a WSI (http.c and headers.c). Like every WSI
// method, on the service goroutine only.

// HTTPRequest reads the method, path, query, version and headers of an HTTP
// request into buf (grown if needed) as NUL-separated strings: method, path,
// query, version ("HTTP/1.1"), then name, value pairs, one per header line,
// names in canonical form ("Content-Type"). custom lists extra header names
// to look up, in the form "x-name:\x00x-other:\x00".
func (w WSI) HTTPRequest(buf []byte, custom string) ([]byte, error) {
	return w.headerInfo(buf, custom, false)
}

// headerInfo fills buf (grown as needed) with lwsgo_http_info's or, for a
// client link's response, lwsgo_client_response's strings.
func (w WSI) headerInfo(buf []byte, custom string, response bool) ([]byte, error) {
	var cp *C.char
	if len(custom) > 0 {
		cp = (*C.char)(unsafe.Pointer(unsafe.StringData(custom)))
	}
	for range 4 {
		if cap(buf) == 0 {
			buf = make([]byte, 0, 4096)
		}
		buf = buf[:cap(buf)]
		p, l, cl := (*C.char)(unsafe.Pointer(&buf[0])), C.int(len(buf)), C.int(len(custom))
		var n int
		if response {
			n = int(C.lwsgo_client_response(C.uintptr_t(w), p, l, cp, cl))
		} else {
			n = int(C.lwsgo_http_info(C.uintptr_t(w), p, l, cp, cl))
		}
		if n >= 0 {
			return buf[:n], nil
		}
		buf = make([]byte, 0, -n+64)
	}
	return nil, errors.New("lws: headers kept growing")
}

// WriteHTTPHeaders writes the status line and headers of a response. hdrs
// holds NUL-terminated name, value pairs. contentLength < 0 means unknown.
func (w WSI) WriteHTTPHeaders(status int, hdrs []byte, contentLength int64, check bool) WriteResult {
	var p *C.char
	if len(hdrs) > 0 {
		p = (*C.char)(unsafe.Pointer(&hdrs[0]))
	}
	return WriteResult(C.lwsgo_http_headers(C.uintptr_t(w), C.int(status), p, C.int(len(hdrs)), C.int64_t(contentLength), b2i(check)))
}

// RespondHTTP writes a whole HTTP/1 answer in one write (one send): the
// status line, headers (hdrs: NUL-terminated name, value pairs), a
// content-length of contentLength, and body, which is that long or, for a
// HEAD, empty. With end it then ends the transaction, as
// HTTPTransactionCompleted. It returns -1 when the answer could not be
// written (close the connection), 1 when end says the connection must now
// close, else 0. What the socket does not take at once libwebsockets keeps
// and sends on by itself, and it ends the transaction only after that.
func (w WSI) RespondHTTP(status int, hdrs, body []byte, contentLength int64, end bool) int {
	hp, bp := headersAndBody(hdrs, body)
	return int(C.lwsgo_http_respond(C.uintptr_t(w), C.int(status), hp, C.int(len(hdrs)), bp, C.int(len(body)), C.int64_t(contentLength), b2i(end)))
}

// ServiceRespond is ServiceWritable for a connection whose HTTP_WRITEABLE
// callback would do nothing but write a whole answer (RespondHTTP's
// arguments): the C layer writes it from that callback, which does not
// reach the Dispatcher (it is counted as one it answered itself, see
// SkipCounter). It returns RespondHTTP's result, after which the callback
// returned -1 unless the result was 0 and end was set (libwebsockets
// closes the connection then, and WSI_DESTROY may have been delivered when
// it returns), or WriteNotCalled when libwebsockets had bytes of its own to
// send first and did not call back: nothing was written. hdrs and body are
// not kept.
func (w WSI) ServiceRespond(status int, hdrs, body []byte, contentLength int64, end bool) WriteResult {
	hp, bp := headersAndBody(hdrs, body)
	return WriteResult(C.lwsgo_service_respond(C.uintptr_t(w), C.int(status), hp, C.int(len(hdrs)), bp, C.int(len(body)), C.int64_t(contentLength), b2i(end)))
}

// WriteHTTP writes body bytes frame[off:off+n]; final marks the last chunk.
// The Pre bytes before off must belong to frame.
func (w WSI) WriteHTTP(frame []byte, off, n int, final, check bool) WriteResult {
	if off < Pre || off+n > len(frame) || off >= cap(frame) {
		panic("cgo: WriteHTTP without LWS_PRE headroom")
	}
	return WriteResult(C.lwsgo_http_write(C.uintptr_t(w), payloadPtr(frame, off), C.size_t(n), b2i(final), b2i(check)))
}

// RefuseHTTP answers a request with an error status, from its
// HTTP_CONFIRM_UPGRADE (instead of the 101) or HTTP callback: status, hdrs
// (NUL-terminated name, value pairs) and a text/plain body, with
// "connection: close", in one write. At HTTP_CONFIRM_UPGRADE the callback
// must then return 1 (answered), at HTTP -1; either way libwebsockets
// closes the connection once the response is out. It reports false when
// the response could not be written (the callback should return -1).
func (w WSI) RefuseHTTP(status int, hdrs, body []byte) bool {
	hp, bp := headersAndBody(hdrs, body)
	return C.lwsgo_http_refuse(C.uintptr_t(w), C.int(status), hp, C.int(len(hdrs)), bp, C.int(len(body))) == 0
}

// headersAndBody returns C's pointers to hdrs and body, nil when empty.
func headersAndBody(hdrs, body []byte) (*C.char, *C.uchar) {
	var hp *C.char
	if len(hdrs) > 0 {
		hp = (*C.char)(unsafe.Pointer(&hdrs[0]))
	}
	var bp *C.uchar
	if len(body) > 0 {
		bp = (*C.uchar)(unsafe.Pointer(&body[0]))
	}
	return hp, bp
}

// CustomHeaderCount counts the lines of a request header libwebsockets does
// not know (name lower case with the colon, "forwarded:"), or returns -1
// when this libwebsockets cannot tell (see CountsCustomHeaders).
func (w WSI) CustomHeaderCount(name string) int {
	if name == "" {
		return -1
	}
	return int(C.lwsgo_custom_header_count(C.uintptr_t(w), (*C.char)(unsafe.Pointer(unsafe.StringData(name))), C.int(len(name))))
}

// CountsCustomHeaders reports whether CustomHeaderCount can count: with
// libwebsockets 4.3.0 or later (lws_hdr_custom_name_foreach), built with
// custom headers.
func CountsCustomHeaders() bool { return C.LWSGO_COUNTS_CUSTOM_HEADERS == 1 }

// ResumeHTTP resumes reading from the connection (RxFlow(true)) and, with
// ask, reports in the same call whether some connection holds input
// libwebsockets has read (lwsgo_forced_service). On libwebsockets 4.3
// that asking may run lws' due timers, which may close this connection.
func (w WSI) ResumeHTTP(ask bool) (pending bool) {
	return C.lwsgo_http_resume(C.uintptr_t(w), b2i(ask)) != 0
}

// HTTPTransactionCompleted ends an HTTP transaction. It reports whether the
// connection must now be closed (true) or may carry the next request.
func (w WSI) HTTPTransactionCompleted() bool {
	return C.lwsgo_http_transaction_completed(C.uintptr_t(w)) != 0
}
