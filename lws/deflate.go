package lws

import "strings"

// permessage-deflate (RFC 7692). libwebsockets' own extension does the
// work (cgo/pmd.c wraps it); this file holds what the binding decides
// about it in Go.

// deflateOffer returns the offer a listener with Compression accepts from
// the values of a request's Sec-WebSocket-Extensions headers: the first
// permessage-deflate offer that pmdParams accepts, as libwebsockets is to
// see it (chooseOffer): its name and the parameters lws acts on, those
// without a value. "" when there is none. RFC 7692 section 5 lets the
// server pick any offer of the list; libwebsockets alone would act on the
// first permessage-deflate offer only.
func deflateOffer(values []string) string {
	for _, v := range values {
		for _, o := range strings.Split(v, ",") {
			name, _, _ := strings.Cut(o, ";")
			if strings.TrimSpace(name) != "permessage-deflate" {
				continue
			}
			sntc, cntc, ok := pmdParams(o)
			if !ok {
				continue
			}
			offer := "permessage-deflate"
			if sntc {
				offer += "; server_no_context_takeover"
			}
			if cntc {
				offer += "; client_no_context_takeover"
			}
			return offer
		}
	}
	return ""
}

// pmdParams checks the parameters of one permessage-deflate offer (what
// follows its name, each after a ";") and reports the two context takeover
// parameters. The offer is declined (ok false) when
//
//   - it has server_max_window_bits: the client asks for a window smaller
//     than libwebsockets' 15 bits, which a server may only accept by naming
//     it in the answer (section 7.1.2.1), and lws never names a window size;
//   - it has a parameter RFC 7692 does not define for an offer, one
//     parameter twice, or a bad client_max_window_bits value: the server
//     must decline it (section 7).
func pmdParams(offer string) (sntc, cntc, ok bool) {
	seen := map[string]bool{}
	for _, p := range strings.Split(offer, ";")[1:] {
		name, val, hasVal := strings.Cut(p, "=")
		name = strings.TrimSpace(name)
		if seen[name] {
			return false, false, false
		}
		seen[name] = true
		switch name {
		case "server_no_context_takeover", "client_no_context_takeover":
			if hasVal {
				return false, false, false
			}
		case "client_max_window_bits":
			if hasVal && !windowBits(strings.Trim(strings.TrimSpace(val), `"`)) {
				return false, false, false
			}
		default:
			// server_max_window_bits, and what RFC 7692 does not
			// define.
			return false, false, false
		}
	}
	return seen["server_no_context_takeover"], seen["client_no_context_takeover"], true
}

// deflateOfferOK decides, at CONFIRM_EXTENSION_OKAY, whether a listener
// with Compression accepts a client's offers when libwebsockets sees them
// as sent (chooseOffer could not leave it one): lws acts on the first
// permessage-deflate offer of the list only, applying only its parameters
// that have no value. So that offer must pass pmdParams, and be no bare
// offer followed by another: lws would take the second for the same
// extension named twice and drop the connection without an answer.
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
	_, _, ok := pmdParams(offers[first])
	return ok
}

// windowBits reports whether s is a window size RFC 7692 allows: 8 to 15,
// in decimal without leading zeros.
func windowBits(s string) bool {
	return len(s) == 1 && s[0] >= '8' && s[0] <= '9' || len(s) == 2 && s[0] == '1' && s[1] >= '0' && s[1] <= '5'
}
