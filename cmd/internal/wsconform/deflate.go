package wsconform

import (
	"bytes"
	"compress/flate"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// permessage-deflate (RFC 7692): the peer's codec and its reading of the
// negotiation. The peer compresses with compress/flate, which always uses
// a 32 KiB window; when the agreement limits the peer's window below 15
// bits it compresses without back-references at all (Huffman only), which
// any window allows. It cannot check the window the implementation
// compresses with: compress/flate inflates any window up to 32 KiB.

// deflateParams are the parameters of one permessage-deflate element of a
// Sec-WebSocket-Extensions value: name to value ("" for none).
type deflateParams map[string]string

// parseDeflate splits a Sec-WebSocket-Extensions value into its elements
// and returns those named permessage-deflate, in order, and the number of
// elements in all. A parameter named twice makes the element nil.
func parseDeflate(value string) (offers []deflateParams, elements int) {
	for _, el := range strings.Split(value, ",") {
		if strings.TrimSpace(el) == "" {
			continue
		}
		elements++
		parts := strings.Split(el, ";")
		if strings.TrimSpace(parts[0]) != "permessage-deflate" {
			continue
		}
		p := deflateParams{}
		for _, kv := range parts[1:] {
			k, v, _ := strings.Cut(kv, "=")
			k = strings.TrimSpace(k)
			if _, dup := p[k]; dup {
				p = nil
				break
			}
			p[k] = strings.Trim(strings.TrimSpace(v), `"`)
		}
		offers = append(offers, p)
	}
	return offers, elements
}

// windowBits parses a window size parameter value: 8 to 15, decimal.
func windowBits(v string) (int, bool) {
	n, err := strconv.Atoi(v)
	if err != nil || n < 8 || n > 15 || strconv.Itoa(n) != v {
		return 0, false
	}
	return n, true
}

// checkAnswer checks a server's answer (one permessage-deflate element)
// against the offer it accepts, as RFC 7692 section 7.1 has it, and
// returns why it is not a valid acceptance, or "".
func checkAnswer(offer, answer deflateParams) string {
	for k, v := range answer {
		switch k {
		case "server_no_context_takeover", "client_no_context_takeover":
			// A server may add either (sections 7.1.1.1, 7.1.1.2).
			if v != "" {
				return k + " with a value"
			}
		case "server_max_window_bits":
			// It may name one whether or not the offer did, no
			// larger than the offer's (section 7.1.2.1).
			n, ok := windowBits(v)
			if !ok {
				return fmt.Sprintf("server_max_window_bits=%q", v)
			}
			if ov, offered := offer[k]; offered {
				if o, _ := windowBits(ov); n > o {
					return fmt.Sprintf("server_max_window_bits=%d above the offer's %d", n, o)
				}
			}
		case "client_max_window_bits":
			// Only if the offer had it, with a value no larger than
			// the offer's (section 7.1.2.2).
			ov, offered := offer[k]
			if !offered {
				return "client_max_window_bits, which the offer did not have"
			}
			n, ok := windowBits(v)
			if !ok {
				return fmt.Sprintf("client_max_window_bits=%q", v)
			}
			if o, ok := windowBits(ov); ok && n > o {
				return fmt.Sprintf("client_max_window_bits=%d above the offer's %d", n, o)
			}
		default:
			return "the unknown parameter " + k
		}
	}
	if _, ok := offer["server_no_context_takeover"]; ok {
		// Accepting it means naming it (section 7.1.1.1).
		if _, named := answer["server_no_context_takeover"]; !named {
			return "no server_no_context_takeover, which the offer had"
		}
	}
	if _, ok := offer["server_max_window_bits"]; ok {
		if _, named := answer["server_max_window_bits"]; !named {
			return "no server_max_window_bits, which the offer had"
		}
	}
	return ""
}

// deflater is one direction of a permessage-deflate link.
type deflater struct {
	noTakeover bool   // each message stands alone (no context takeover)
	huffman    bool   // compress without back-references (window < 15 bits)
	window     []byte // the last 32 KiB of the messages so far
}

const windowSize = 32 << 10

func (d *deflater) remember(msg []byte) {
	if d.noTakeover {
		return
	}
	d.window = append(d.window, msg...)
	if n := len(d.window); n > windowSize {
		d.window = append(d.window[:0], d.window[n-windowSize:]...)
	}
}

// compress returns msg as the payload of a compressed message: deflate
// data ended by a sync flush without its last 4 bytes (section 7.2.1).
func (d *deflater) compress(msg []byte) []byte {
	var b bytes.Buffer
	var w *flate.Writer
	if d.huffman {
		w, _ = flate.NewWriter(&b, flate.HuffmanOnly)
	} else {
		// Level 6: compress/flate ignores a dictionary below level 2.
		w, _ = flate.NewWriterDict(&b, flate.DefaultCompression, d.window)
	}
	_, _ = w.Write(msg)
	_ = w.Flush()
	d.remember(msg)
	return bytes.TrimSuffix(b.Bytes(), []byte{0, 0, 0xff, 0xff})
}

// inflate inflates the payload of a compressed message (section 7.2.2).
func (d *deflater) inflate(p []byte, max int64) ([]byte, error) {
	// The 4 bytes the sender took off, then an empty final block so
	// that the reader ends cleanly.
	src := io.MultiReader(bytes.NewReader(p), bytes.NewReader([]byte{0, 0, 0xff, 0xff, 1, 0, 0, 0xff, 0xff}))
	out, err := io.ReadAll(io.LimitReader(flate.NewReaderDict(src, d.window), max+1))
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF):
		return nil, errors.New("the deflate data ends in the middle of a block")
	case err != nil:
		return nil, err
	case int64(len(out)) > max:
		return nil, fmt.Errorf("it inflates to more than %d bytes", max)
	}
	d.remember(out)
	return out, nil
}

// pmdLink is the permessage-deflate state of a link the peer negotiated.
type pmdLink struct {
	tx, rx deflater
}

// newPMDLink sets up the peer's side of an agreement. client says whether
// the peer is the client; offer is the offer the answer accepted.
func newPMDLink(client bool, offer, answer deflateParams) *pmdLink {
	has := func(p deflateParams, k string) bool { _, ok := p[k]; return ok }
	bits := func(p deflateParams, k string) int {
		if n, ok := windowBits(p[k]); ok {
			return n
		}
		return 15
	}
	mine, theirs := "client", "server"
	if !client {
		mine, theirs = "server", "client"
	}
	l := &pmdLink{}
	l.tx.noTakeover = has(answer, mine+"_no_context_takeover")
	l.tx.huffman = bits(answer, mine+"_max_window_bits") < 15
	l.rx.noTakeover = has(answer, theirs+"_no_context_takeover")
	if client {
		// The client's own offer binds it too (sections 7.1.1.2, 7.1.2.2).
		l.tx.noTakeover = l.tx.noTakeover || has(offer, "client_no_context_takeover")
		l.tx.huffman = l.tx.huffman || bits(offer, "client_max_window_bits") < 15
	}
	return l
}

// acceptance is the peer's answer, as a server, to the first valid
// permessage-deflate offer in a Sec-WebSocket-Extensions value: it accepts
// what the offer asks of the server and leaves the client's window alone,
// so that it is a valid acceptance of any offer. "": there is none.
func acceptance(offerValue string) string {
	offers, _ := parseDeflate(offerValue)
	for _, o := range offers {
		if o == nil || checkOffer("permessage-deflate"+o.String()) != "" {
			continue
		}
		a := "permessage-deflate"
		for _, k := range []string{"server_no_context_takeover", "client_no_context_takeover", "server_max_window_bits"} {
			if v, ok := o[k]; ok {
				a += "; " + k
				if v != "" {
					a += "=" + v
				}
			}
		}
		return a
	}
	return ""
}

// String returns the parameters as they follow the extension's name.
func (p deflateParams) String() string {
	var b strings.Builder
	for _, k := range []string{"server_no_context_takeover", "client_no_context_takeover", "server_max_window_bits", "client_max_window_bits"} {
		if v, ok := p[k]; ok {
			b.WriteString("; " + k)
			if v != "" {
				b.WriteString("=" + v)
			}
		}
	}
	for k, v := range p {
		switch k {
		case "server_no_context_takeover", "client_no_context_takeover", "server_max_window_bits", "client_max_window_bits":
		default:
			b.WriteString("; " + k)
			if v != "" {
				b.WriteString("=" + v)
			}
		}
	}
	return b.String()
}

// agreement reads a negotiation: the offer (a Sec-WebSocket-Extensions
// value) and the server's answer (the values of its header). answer is nil
// when the answer names no permessage-deflate; why says what makes it no
// valid acceptance of any of the offers ("": it is one, of offer).
func agreement(offerValue string, answerValues []string) (offer, answer deflateParams, why string) {
	answers, n := parseDeflate(strings.Join(answerValues, ","))
	if len(answers) == 0 {
		return nil, nil, ""
	}
	answer = answers[0]
	switch {
	case n != 1:
		return nil, answer, fmt.Sprintf("the answer names %d extensions, not one", n)
	case answer == nil:
		return nil, deflateParams{}, "the answer names a parameter twice"
	}
	offers, _ := parseDeflate(offerValue)
	for _, o := range offers {
		if o == nil {
			continue
		}
		r := checkAnswer(o, answer)
		if r == "" {
			return o, answer, ""
		}
		if why == "" {
			why = "it has " + r
		}
	}
	if why == "" {
		why = "permessage-deflate was not offered"
	}
	return nil, answer, why
}

// checkOffer checks a client's permessage-deflate offers (section 7): it
// returns why they are not valid, or "" (none: "").
func checkOffer(value string) string {
	offers, _ := parseDeflate(value)
	for _, o := range offers {
		if o == nil {
			return "an offer names a parameter twice"
		}
		for k, v := range o {
			switch k {
			case "server_no_context_takeover", "client_no_context_takeover":
				if v != "" {
					return k + " with a value"
				}
			case "server_max_window_bits":
				if _, ok := windowBits(v); !ok {
					return fmt.Sprintf("server_max_window_bits=%q", v)
				}
			case "client_max_window_bits":
				if _, ok := windowBits(v); v != "" && !ok {
					return fmt.Sprintf("client_max_window_bits=%q", v)
				}
			default:
				return "the unknown parameter " + k
			}
		}
	}
	return ""
}

// agreed checks, for an implementation with permessage-deflate enabled,
// that the handshake agreed it: as a server, with a valid answer to the
// offer (mayDecline: declining the offer is fine too, else NON-STRICT);
// as a client, after offering it validly. It returns a Result that ends
// the case, or nil to go on (Deflated then says whether it was agreed).
func (t *T) agreed(mayDecline bool) *Result {
	var r Result
	if t.target == TargetServer {
		switch {
		case t.pmdWhy != "":
			r = failed("the 101 accepts permessage-deflate, but %s (RFC 7692 section 7.1)", t.pmdWhy)
		case !t.Deflated() && !mayDecline:
			r = nonStrict("the server declined an offer it could accept (RFC 7692 allows declining any offer)")
		default:
			return nil
		}
		return &r
	}
	offer := strings.Join(t.req.Header.Values("Sec-WebSocket-Extensions"), ",")
	if offers, _ := parseDeflate(offer); len(offers) == 0 {
		r = failed("the client did not offer permessage-deflate (offer: %q)", offer)
		return &r
	}
	if why := checkOffer(offer); why != "" {
		r = failed("the client's offer %q has %s (RFC 7692 section 7)", offer, why)
		return &r
	}
	return nil
}
