package callbacks

import "strconv"

// Reason is a libwebsockets callback reason (enum lws_callback_reasons).
// The values are fixed by lws-callbacks.h, which declares them part of the ABI.
type Reason int32

// String returns the C enumerator name, e.g. "LWS_CALLBACK_RECEIVE", or
// "LWS_CALLBACK_UNKNOWN(n)" for a value no supported release defines.
func (r Reason) String() string {
	if s, ok := reasonNames[r]; ok {
		return s
	}
	return "LWS_CALLBACK_UNKNOWN(" + strconv.Itoa(int(r)) + ")"
}

// Known reports whether r is a reason of some supported libwebsockets release.
func (r Reason) Known() bool {
	_, ok := reasonNames[r]
	return ok
}

// Reasons returns every known reason in ascending order.
func Reasons() []Reason {
	out := make([]Reason, len(allReasons))
	copy(out, allReasons[:])
	return out
}

// FakeWSI reports whether libwebsockets calls back with reason r on a
// placeholder wsi that is not a connection: a per-vhost or per-protocol
// notification (PROTOCOL_INIT, PROTOCOL_DESTROY, EVENT_WAIT_CANCELLED,
// GET_THREAD_ID, TLS context set-up, certificate events). Such a wsi must not
// carry per-connection state, and the reason log prints it as wsi:0.
func (r Reason) FakeWSI() bool {
	switch r {
	case ProtocolInit, ProtocolDestroy, EventWaitCancelled, GetThreadID,
		OpenSSLLoadExtraClientVerifyCerts, OpenSSLLoadExtraServerVerifyCerts,
		OpenSSLContextRequiresPrivateKey, VhostCertAging, VhostCertUpdate:
		return true
	}
	return false
}
