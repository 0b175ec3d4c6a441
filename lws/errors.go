package lws

import "errors"

// Errors returned by the package. Test with errors.Is.
var (
	// ErrClosed: the link or context is closed (a Send after close also
	// wraps the link's *CloseError).
	ErrClosed = errors.New("lws: closed")
	// ErrSendQueueFull: the link's send queue would exceed
	// Listener.MaxSendQueue; see SlowConsumerPolicy.
	ErrSendQueueFull = errors.New("lws: send queue full")
	// ErrMessageTooBig: a message is over the link's maximum message size.
	ErrMessageTooBig = errors.New("lws: message too big")
	// ErrAlreadyResponded: an HTTP response was already sent.
	ErrAlreadyResponded = errors.New("lws: response already sent")
	// ErrInvalidCloseCode: a close code that may not be sent.
	ErrInvalidCloseCode = errors.New("lws: close code may not be sent")
)
