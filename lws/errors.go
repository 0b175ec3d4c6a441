package lws

import (
	"errors"
	"fmt"
	"net/http"
)

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

// HTTPError is an HTTP status with a message, for refusing a request, for
// example from Listener.CheckUpgrade. Use it with errors.As; wrapped, it
// still counts.
type HTTPError struct {
	// Status is the response status, 400 to 599.
	Status int
	// Message is the text/plain response body; "": the status text.
	Message string
	// Header holds response headers to send with it, such as
	// WWW-Authenticate with a 401 or Retry-After with a 503. The binding
	// writes Content-Type, Content-Length and Connection itself, and
	// drops them here. nil: none.
	Header http.Header
}

func (e *HTTPError) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("lws: HTTP %d %s", e.Status, http.StatusText(e.Status))
	}
	return fmt.Sprintf("lws: HTTP %d: %s", e.Status, e.Message)
}
