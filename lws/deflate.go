package lws

import "strings"

// permessage-deflate (RFC 7692). libwebsockets' own extension does the
// work (cgo/shim.c wraps it); this file holds what the binding decides
// about it in Go.

// deflateOfferOK decides, at CONFIRM_EXTENSION_OKAY, whether a listener
// with Compression accepts a client's permessage-deflate offer, given the
// values of the request's Sec-WebSocket-Extensions headers. libwebsockets
// acts on the first permessage-deflate offer of the list only, applies
// only the parameters of it that have no value, and never names a window
// size in its answer. So the offer is declined (the 101 names no
// extension and the link goes uncompressed) when
//
//   - it has server_max_window_bits: the client asks for a window smaller
//     than libwebsockets' 15 bits, which a server may only accept by naming
//     it in the answer (section 7.1.2.1);
//   - it has a parameter RFC 7692 does not define for an offer, one
//     parameter twice, or a bad client_max_window_bits value: the server
//     must decline it (section 7);
//   - it has no parameters and another permessage-deflate offer follows:
//     libwebsockets would take the second for the same extension named
//     twice and drop the connection without an answer.
func deflateOfferOK(values []string) bool {
	var offers []string
	for _, v := range values {
		offers = append(offers, strings.Split(v, ",")...)
	}
	first := -1
	for i, o := range offers {
		name, _, _ := strings.Cut(o, ";")
		if strings.TrimSpace(name) != "permessage-deflate" {
			continue
		}
		if first < 0 {
			first = i
		} else if !strings.Contains(offers[first], ";") {
			return false
		}
	}
	if first < 0 {
		return false
	}
	params := strings.Split(offers[first], ";")[1:]
	seen := map[string]bool{}
	for _, p := range params {
		name, val, hasVal := strings.Cut(p, "=")
		name = strings.TrimSpace(name)
		if seen[name] {
			return false
		}
		seen[name] = true
		switch name {
		case "server_no_context_takeover", "client_no_context_takeover":
			if hasVal {
				return false
			}
		case "client_max_window_bits":
			if hasVal && !windowBits(strings.Trim(strings.TrimSpace(val), `"`)) {
				return false
			}
		default:
			// server_max_window_bits, and what RFC 7692 does not
			// define.
			return false
		}
	}
	return true
}

// windowBits reports whether s is a window size RFC 7692 allows: 8 to 15,
// in decimal without leading zeros.
func windowBits(s string) bool {
	return len(s) == 1 && s[0] >= '8' && s[0] <= '9' || len(s) == 2 && s[0] == '1' && s[1] >= '0' && s[1] <= '5'
}
