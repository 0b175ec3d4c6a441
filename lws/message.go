package lws

// MessageType is the type of a WebSocket message.
type MessageType int

// Message types, with the RFC 6455 opcode values.
const (
	TextMessage   MessageType = 1
	BinaryMessage MessageType = 2
)

func (t MessageType) String() string {
	switch t {
	case TextMessage:
		return "text"
	case BinaryMessage:
		return "binary"
	}
	return "invalid"
}
