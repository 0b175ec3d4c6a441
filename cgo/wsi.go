package cgo

/*
#include <stdlib.h>
#include "shim.h"
*/
import "C"

import (
	"errors"
	"net"
	"slices"
	"syscall"
	"unsafe"
)

// WSI is a libwebsockets connection (struct lws *), carried as an integer.
//
// Concurrency: every method must be called on the service goroutine, and
// only while the connection exists (between its first callback and
// WSI_DESTROY).
type WSI uintptr

// WriteResult is what a write helper reports.
type WriteResult int

// Write results.
const (
	WriteFailed WriteResult = -1 // fatal: close the connection
	WriteOK     WriteResult = 0  // the pipe can take more now
	WriteChoked WriteResult = 1  // wait for the next WRITEABLE callback
	// ServiceWrite and ServiceRespond only: libwebsockets did not call
	// WRITEABLE back, and nothing was written.
	WriteNotCalled WriteResult = C.LWSGO_NOT_CALLED
)

// WriteWS writes one WebSocket frame whose payload is frame[off:off+n]. The
// Pre bytes before off must belong to frame: libwebsockets writes the frame
// header there. first and last mark the frame's place in its message.
//
// With check, the result says whether the socket can take more now
// (lws_send_pipe_choked: one poll(2)); without, a successful write reports
// WriteOK. Ask only when more is to be written in this callback: what the
// kernel does not take, libwebsockets keeps and sends first, so writing on
// into a choked socket costs a copy, never order or data. The same holds
// for WriteHTTPHeaders and WriteHTTP.
func (w WSI) WriteWS(frame []byte, off, n int, binary, first, last, check bool) WriteResult {
	if off < Pre || off+n > len(frame) || off >= cap(frame) {
		panic("cgo: WriteWS without LWS_PRE headroom")
	}
	return WriteResult(C.lwsgo_ws_write(C.uintptr_t(w), payloadPtr(frame, off), C.size_t(n),
		b2i(binary), b2i(first), b2i(last), b2i(check)))
}

// WriteWSRaw writes p, which holds whole WebSocket frames (headers and
// payloads, masked by the caller on a client link): several messages in one
// send, or a message that must not go through permessage-deflate. Never in
// the middle of a message, nor while libwebsockets is still compressing
// one (it calls WRITEABLE back only when it is not). check is as for
// WriteWS. p is not kept.
func (w WSI) WriteWSRaw(p []byte, check bool) WriteResult {
	if len(p) == 0 {
		return WriteOK
	}
	return WriteResult(C.lwsgo_ws_write_raw(C.uintptr_t(w), (*C.uchar)(unsafe.Pointer(&p[0])), C.size_t(len(p)), b2i(check)))
}

// HeldFrame is C memory that holds the payload of the last frame written
// on a link with permessage-deflate. libwebsockets' deflate keeps zlib's
// input pointer into the payload after lws_write returns, and compresses
// the rest over later WRITEABLE rounds of its own; it calls the binding's
// WRITEABLE again only once it has taken all of it. So the payload cannot
// be Go memory (C may not keep Go pointers), and it stays allocated until
// the next write or Free. The zero value holds nothing. Service goroutine
// only, like every WSI method.
type HeldFrame struct {
	p   unsafe.Pointer // C memory: Pre bytes of headroom, then the payload
	cap int
}

// WriteWSHeld writes one frame of a link with permessage-deflate, like
// WriteWS, with a copy of payload in h's C memory (reused, or grown). Call
// it at most once per WRITEABLE callback: then what h held before is no
// longer read by libwebsockets.
func (w WSI) WriteWSHeld(h *HeldFrame, payload []byte, binary, first, last, check bool) WriteResult {
	need := Pre + len(payload) + 1 // a byte past the payload, as WriteWS asks
	if h.cap < need {
		h.Free()
		h.p = C.malloc(C.size_t(need))
		if h.p == nil {
			return WriteFailed
		}
		h.cap = need
	}
	buf := unsafe.Slice((*byte)(h.p), need)
	copy(buf[Pre:], payload)
	return WriteResult(C.lwsgo_ws_write(C.uintptr_t(w), (*C.uchar)(unsafe.Add(h.p, Pre)), C.size_t(len(payload)),
		b2i(binary), b2i(first), b2i(last), b2i(check)))
}

// SetCompressedLimit tells the C layer the compressed bytes a message may
// bring on a link with permessage-deflate: past them it makes
// libwebsockets call RECEIVE (with no data) even for input that inflates
// to nothing, so that the binding sees callbacks.Event.Len pass the limit.
// 0: none. Call it at ESTABLISHED.
func (w WSI) SetCompressedLimit(n int64) { C.lwsgo_set_rx_limit(C.uintptr_t(w), C.uint64_t(n)) }

// SetProtocol replaces the Sec-WebSocket-Protocol header of the upgrade
// request libwebsockets is about to answer with name, the subprotocol
// chosen, from HTTP_CONFIRM_UPGRADE; see lwsgo_ws_set_protocol. It
// returns the header's length as libwebsockets counts it (0: the request
// has none) and whether it was replaced: not when the header came on more
// than one line, nor when lws' header buffer or its record of the header
// could not be found.
func (w WSI) SetProtocol(name string) (length int, ok bool) {
	cs := C.CString(name)
	defer C.free(unsafe.Pointer(cs))
	n := int(C.lwsgo_ws_set_protocol(C.uintptr_t(w), cs))
	if n < 0 {
		return -n, false
	}
	return n, true
}

// ExtensionsMax is the longest Sec-WebSocket-Extensions header
// SetExtensionOffer can replace (LWSGO_EXTENSIONS_MAX).
const ExtensionsMax = C.LWSGO_EXTENSIONS_MAX

// SetExtensionOffer replaces the Sec-WebSocket-Extensions header of the
// upgrade request libwebsockets is about to answer with offer (one offer,
// or "" for none), from HTTP_CONFIRM_UPGRADE; see lwsgo_ws_set_offer. It
// returns the header's length as libwebsockets counts it (0: the request
// has none) and whether it was replaced: not when longer than
// ExtensionsMax, nor when lws' header buffer could not be found or has no
// room for offer where the header is.
func (w WSI) SetExtensionOffer(offer string) (length int, ok bool) {
	cs := C.CString(offer)
	defer C.free(unsafe.Pointer(cs))
	n := int(C.lwsgo_ws_set_offer(C.uintptr_t(w), cs))
	if n < 0 {
		return -n, false
	}
	return n, true
}

// Free releases h's memory: when the link is destroyed, or at a WRITEABLE
// callback with nothing left to write.
func (h *HeldFrame) Free() {
	if h.p != nil {
		C.free(h.p)
		h.p, h.cap = nil, 0
	}
}

// Ping sends a PING with payload frame[Pre:] (at most 125 bytes).
func (w WSI) Ping(frame []byte) WriteResult {
	if len(frame) < Pre {
		panic("cgo: Ping without LWS_PRE headroom")
	}
	if cap(frame) <= Pre {
		panic("cgo: Ping frame needs capacity beyond LWS_PRE")
	}
	return WriteResult(C.lwsgo_ws_ping(C.uintptr_t(w), payloadPtr(frame, Pre), C.size_t(len(frame)-Pre)))
}

// CloseReason sets the close code and reason lws sends when the callback
// returns -1. The reason is cut to 123 bytes.
func (w WSI) CloseReason(code int, reason string) {
	var p *C.uchar
	if len(reason) > 0 {
		p = (*C.uchar)(unsafe.Pointer(unsafe.StringData(reason)))
	}
	C.lwsgo_close_reason(C.uintptr_t(w), C.int(code), p, C.size_t(len(reason)))
}

// CallbackOnWritable asks for a WRITEABLE callback.
func (w WSI) CallbackOnWritable() { C.lwsgo_on_writable(C.uintptr_t(w)) }

// ServiceWritable delivers the WRITEABLE callback now (HTTP_WRITEABLE, or a
// WebSocket link's), as if poll(2) had reported the socket writable and
// not readable (lws_service_fd with POLLOUT alone). Call it only between
// Service calls, never from inside a callback; the connection may be
// closed (WSI_DESTROY delivered) when it returns.
func (w WSI) ServiceWritable() { C.lwsgo_service_writable(C.uintptr_t(w)) }

// ServiceWrite is ServiceWritable for a server link whose WRITEABLE
// callback would do nothing but write one whole message,
// frame[off:off+n], with the Pre bytes before off (as WriteWS): the C
// layer writes it from that callback, which does not reach the Dispatcher
// (it is counted as one it answered itself, see SkipCounter). It returns
// WriteOK when the message was written, WriteNotCalled when libwebsockets
// had bytes of its own to send first and did not call back, and
// WriteFailed when the write failed: libwebsockets then closes the
// connection, and WSI_DESTROY may have been delivered when it returns.
// frame is not kept.
func (w WSI) ServiceWrite(frame []byte, off, n int, binary bool) WriteResult {
	if off < Pre || off+n > len(frame) || off >= cap(frame) {
		panic("cgo: ServiceWrite without LWS_PRE headroom")
	}
	return WriteResult(C.lwsgo_service_write(C.uintptr_t(w), payloadPtr(frame, off), C.size_t(n), b2i(binary)))
}

// RxFlow pauses (false) or resumes (true) reading from the connection.
func (w WSI) RxFlow(enable bool) { C.lwsgo_rx_flow(C.uintptr_t(w), b2i(enable)) }

// SetUser stores a handle in the wsi's opaque user data (0 clears it).
func (w WSI) SetUser(h Handle) { C.lwsgo_set_opaque(C.uintptr_t(w), C.uintptr_t(h)) }

// Kill closes the connection without a close handshake. With sync the
// closing callbacks run before Kill returns (never for the wsi whose
// callback is running); otherwise at the next timeout check.
func (w WSI) Kill(sync bool) { C.lwsgo_kill(C.uintptr_t(w), b2i(sync)) }

// SetTimeout makes libwebsockets close the connection if it still exists
// in secs seconds (0 cancels).
func (w WSI) SetTimeout(secs int) { C.lwsgo_set_timeout(C.uintptr_t(w), C.int(secs)) }

// RemoteAddr returns the peer's address, or nil.
func (w WSI) RemoteAddr() net.Addr {
	fd := int(C.lwsgo_socket_fd(C.uintptr_t(w)))
	if fd < 0 {
		return nil
	}
	sa, err := syscall.Getpeername(fd)
	if err != nil {
		return nil
	}
	// The address is copied out of the Sockaddr: a link keeps its
	// address for its life, and an IP slicing the Sockaddr's array would
	// keep the whole Sockaddr (64 bytes for IPv6, which an IPv4 peer of a
	// dual-stack listener arrives as) instead of 16 bytes.
	switch a := sa.(type) {
	case *syscall.SockaddrInet4:
		return &net.TCPAddr{IP: net.IPv4(a.Addr[0], a.Addr[1], a.Addr[2], a.Addr[3]), Port: a.Port}
	case *syscall.SockaddrInet6:
		ip := net.IP(a.Addr[:])
		if v4 := ip.To4(); v4 != nil {
			ip = net.IPv4(v4[0], v4[1], v4[2], v4[3])
		} else {
			ip = slices.Clone(ip)
		}
		return &net.TCPAddr{IP: ip, Port: a.Port}
	}
	return nil
}

// PeerClosed reports whether the peer has closed its side of the
// connection: a non-blocking peek at the socket reads end-of-file (or a
// reset). It only looks; nothing is consumed. A TLS peer's close_notify is
// data, so it reads as still open.
func (w WSI) PeerClosed() bool {
	fd := int(C.lwsgo_socket_fd(C.uintptr_t(w)))
	if fd < 0 {
		return true
	}
	var b [1]byte
	n, _, err := syscall.Recvfrom(fd, b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	switch {
	case err == nil:
		return n == 0
	case errors.Is(err, syscall.EAGAIN), errors.Is(err, syscall.EINTR):
		return false
	}
	return true // ECONNRESET and the like
}

// payloadPtr points at frame[off], which may be at len(frame) for an empty
// payload (within capacity, so still inside the allocation): libwebsockets
// needs a valid pointer with headroom even to write 0 bytes.
func payloadPtr(frame []byte, off int) *C.uchar {
	return (*C.uchar)(unsafe.Add(unsafe.Pointer(unsafe.SliceData(frame)), off))
}

func b2i(b bool) C.int {
	if b {
		return 1
	}
	return 0
}
