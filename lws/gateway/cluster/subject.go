package cluster

import "strings"

// EncodeToken maps any string (a channel name, a node name) to one NATS
// subject token that is also a valid KV key part: bytes in [A-Za-z0-9_-]
// stand for themselves, every other byte is written =XX (two upper-case
// hex digits), and the empty string is "=". The mapping is one-to-one
// (DecodeToken inverts it and refuses anything EncodeToken cannot
// produce), so two channels never share a subject, and common names stay
// readable in `nats sub`: "room:42" is "room=3A42".
func EncodeToken(s string) string {
	if s == "" {
		return "="
	}
	n := 0
	for i := 0; i < len(s); i++ {
		if !plainByte(s[i]) {
			n++
		}
	}
	if n == 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 2*n)
	const hex = "0123456789ABCDEF"
	for i := 0; i < len(s); i++ {
		c := s[i]
		if plainByte(c) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('=')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
	return b.String()
}

// DecodeToken inverts EncodeToken; ok is false for a token EncodeToken
// never returns (a lower-case or missing hex digit, an escaped plain
// byte, a byte outside the alphabet).
func DecodeToken(t string) (s string, ok bool) {
	if t == "=" {
		return "", true
	}
	if t == "" {
		return "", false
	}
	if !strings.Contains(t, "=") {
		for i := 0; i < len(t); i++ {
			if !plainByte(t[i]) {
				return "", false
			}
		}
		return t, true
	}
	b := make([]byte, 0, len(t))
	for i := 0; i < len(t); i++ {
		c := t[i]
		switch {
		case plainByte(c):
			b = append(b, c)
		case c == '=' && i+2 < len(t):
			hi, ok1 := unhex(t[i+1])
			lo, ok2 := unhex(t[i+2])
			v := hi<<4 | lo
			if !ok1 || !ok2 || plainByte(v) {
				return "", false
			}
			b = append(b, v)
			i += 2
		default:
			return "", false
		}
	}
	return string(b), true
}

func plainByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-'
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
