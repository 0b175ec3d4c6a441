package gateway

import (
	"encoding/json"
	"unicode/utf8"
)

// decodeValid decodes data, which json.Valid accepted, into what a
// json.Decoder with UseNumber gives (map[string]any, []any, string,
// json.Number, bool, nil), without its reflection: every message a rule
// reads a field of is decoded, so this is on the path of each one. A
// string with an escape or a byte beyond ASCII is handed to
// encoding/json, so that its unescaping and its replacement of invalid
// UTF-8 are the same; so are duplicate keys (the last one wins).
//
// Concurrency: a function.
func decodeValid(data []byte) any {
	d := validDecoder{data: data}
	return d.value()
}

// validDecoder walks JSON known to be valid.
//
// Concurrency: one goroutine.
type validDecoder struct {
	data []byte
	i    int
}

func (d *validDecoder) space() {
	for d.i < len(d.data) {
		switch d.data[d.i] {
		case ' ', '\t', '\r', '\n':
			d.i++
		default:
			return
		}
	}
}

func (d *validDecoder) value() any {
	d.space()
	switch c := d.data[d.i]; c {
	case '{':
		d.i++
		m := map[string]any{}
		for {
			d.space()
			if d.data[d.i] == '}' {
				d.i++
				return m
			}
			if d.data[d.i] == ',' {
				d.i++
				d.space()
			}
			k := d.str()
			d.space()
			d.i++ // ':'
			m[k] = d.value()
			d.space()
		}
	case '[':
		d.i++
		a := []any{}
		for {
			d.space()
			if d.data[d.i] == ']' {
				d.i++
				return a
			}
			if d.data[d.i] == ',' {
				d.i++
			}
			a = append(a, d.value())
		}
	case '"':
		return d.str()
	case 't':
		d.i += 4
		return true
	case 'f':
		d.i += 5
		return false
	case 'n':
		d.i += 4
		return nil
	default: // a number
		start := d.i
		for d.i < len(d.data) && numberByte(d.data[d.i]) {
			d.i++
		}
		return json.Number(d.data[start:d.i])
	}
}

// str reads the string at d.i (its opening quote).
func (d *validDecoder) str() string {
	start := d.i
	d.i++
	plain := true
	for {
		c := d.data[d.i]
		if c == '"' {
			break
		}
		if c == '\\' {
			plain = false
			d.i++ // the escaped byte cannot end the string
		} else if c >= utf8.RuneSelf {
			plain = false
		}
		d.i++
	}
	d.i++
	if plain {
		return string(d.data[start+1 : d.i-1])
	}
	var s string
	_ = json.Unmarshal(d.data[start:d.i], &s) // valid: it cannot fail
	return s
}

func numberByte(c byte) bool {
	return c >= '0' && c <= '9' || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E'
}
