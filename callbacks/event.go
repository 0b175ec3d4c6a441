package callbacks

// Flags carries facts about a callback that the C layer reads from
// libwebsockets before it calls Go, so that one crossing carries them all.
type Flags uint32

// The flags the C layer sets.
const (
	// FirstFragment: this RECEIVE chunk starts a message (lws_is_first_fragment).
	FirstFragment Flags = 1 << iota
	// FinalFragment: this chunk belongs to the frame that ends the message
	// (lws_is_final_fragment).
	FinalFragment
	// Binary: the message is binary, not text (lws_frame_is_binary).
	Binary
	// NoRemaining: no payload of the current frame is still to come
	// (lws_remaining_packet_payload == 0). A message is complete on a chunk
	// with both FinalFragment and NoRemaining.
	NoRemaining
	// Wake: this EVENT_WAIT_CANCELLED is the first since the binding asked for
	// a wake-up (the C layer de-duplicates lws's broadcast of the reason to
	// every protocol of every vhost), so queued work should be drained now.
	Wake
	// StaleData: libwebsockets passed an in pointer into memory it had
	// already released, so the C layer dropped it (Data is nil) and decides
	// the callback's result itself. It happens at HTTP_CONFIRM_UPGRADE
	// for an unknown Upgrade value on a keep-alive connection with
	// libwebsockets before 4.3.7 (CVE-2025-11677); the connection is hung
	// up.
	StaleData
	// Deflate: on ESTABLISHED and CLIENT_ESTABLISHED, permessage-deflate
	// (RFC 7692) was negotiated for the link.
	Deflate
)

// Complete reports whether a RECEIVE chunk with these flags ends a message.
func (f Flags) Complete() bool { return f&(FinalFragment|NoRemaining) == FinalFragment|NoRemaining }

// Event is one libwebsockets callback as it reaches Go.
//
// The C layer reuses one Event per context: its fields, and the memory Data
// points to, are valid only until Dispatch returns.
type Event struct {
	// Reason is why libwebsockets called back.
	Reason Reason
	// WSI identifies the connection (the struct lws pointer as an integer).
	// It is only an identity and a token for the C layer: it is reused by
	// libwebsockets after WSI_DESTROY, and 0 when lws passed no wsi.
	WSI uintptr
	// User is the per-connection value stored in the wsi's opaque user data
	// (a runtime/cgo.Handle, or 0 when none was attached yet). Always 0 for
	// reasons whose wsi is a placeholder (see Reason.FakeWSI).
	User uintptr
	// Protocol is the index of the protocol in the vhost's table that
	// libwebsockets bound the wsi to, or -1 when there is none.
	Protocol int
	// Data is the callback's in/len as bytes, for reasons whose in is a
	// buffer (received payload, HTTP body, path, close payload, error text).
	// It aliases libwebsockets memory and is nil for other reasons.
	Data []byte
	// Len is the callback's len argument, whatever in is; except for
	// RECEIVE and CLIENT_RECEIVE, where it is the compressed bytes the
	// message has brought so far (permessage-deflate), counted by the C
	// layer, and 0 for a message that is not compressed (Data has the
	// chunk).
	Len int
	// Flags are the pre-computed facts described on Flags.
	Flags Flags
}

// Dispatcher receives every callback of a libwebsockets context.
//
// Dispatch runs on the service goroutine. Its result is what the callback
// returns to libwebsockets: 0 to continue, non-zero (conventionally -1) to
// close the connection, or for some reasons a reason-specific value.
type Dispatcher interface {
	Dispatch(ev *Event) int
}

// SkipCounter is implemented by a Dispatcher that counts callbacks. The C
// layer answers the reasons no Dispatcher acts on (bind and drop protocol,
// filters, poll-fd changes, spare EVENT_WAIT_CANCELLED...) without calling
// Dispatch unless it is told to report every reason; it then hands their
// counts to Skipped instead, on the service goroutine, after each pass of
// the service loop and before the context is freed.
type SkipCounter interface {
	Skipped(r Reason, n uint32)
}

// MidPasser is implemented by a Dispatcher that has work to do between
// libwebsockets' callbacks in the middle of a service pass: on the libev
// loop, a pass that brings messages on many links is interrupted every few
// dozen links, between two of libwebsockets' I/O callbacks, so that the
// answers queued so far go out before the pass has read every socket. No
// callback is running when MidPass is called, on the service goroutine;
// as between passes, it may deliver WRITEABLE callbacks (lws_service_fd).
type MidPasser interface {
	MidPass()
}

// DispatcherFunc adapts a function to the Dispatcher interface.
type DispatcherFunc func(ev *Event) int

// Dispatch calls f(ev).
func (f DispatcherFunc) Dispatch(ev *Event) int { return f(ev) }

// HasBuffer reports whether a callback with reason r carries a byte buffer,
// so that Event.Data may be set: libwebsockets' in/len, or for
// FILTER_NETWORK_CONNECTION the peer's IP address (4 or 16 bytes) and port
// (2 bytes, network order), which the C layer reads from the struct
// libwebsockets passes. For every other reason in is a pointer to a
// struct, a file descriptor, or NULL.
func (r Reason) HasBuffer() bool {
	switch r {
	case FilterNetworkConnection,
		Receive, ClientReceive, ReceivePong, ClientReceivePong,
		HTTP, HTTPBody, FilterHTTPConnection, FilterProtocolConnection,
		WSPeerInitiatedClose, ClientConnectionError, ReceiveClientHTTPRead,
		HTTPConfirmUpgrade, VerifyBasicAuthorization, RawRX, RawProxyCliRX,
		RawProxySrvRX, RawRXFile, ConfirmExtensionOkay:
		return true
	}
	return false
}
