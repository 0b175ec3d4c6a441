package cgo

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestX509Codes holds each X509_V_ERR_* constant to the text OpenSSL gives
// for its value: a constant bound to another code reads another text.
func TestX509Codes(t *testing.T) {
	if X509ErrorString(X509CertHasExpired) == "certificate verification failed" {
		t.Skip("libwebsockets is not built with OpenSSL: no texts to check against")
	}
	for _, c := range []struct {
		code int
		text string
	}{
		{X509CertNotYetValid, "certificate is not yet valid"},
		{X509CertHasExpired, "certificate has expired"},
		{X509DepthZeroSelfSigned, "self-signed certificate"},
		{X509SelfSignedCertInChain, "self-signed certificate in certificate chain"},
		{X509UnableToGetIssuerLocally, "unable to get local issuer certificate"},
		{X509UnableToVerifyLeaf, "unable to verify the first certificate"},
		{X509HostnameMismatch, "hostname mismatch"},
		{X509IPAddressMismatch, "IP address mismatch"},
	} {
		// OpenSSL 1.1 wrote "self signed", 3.0 "self-signed".
		got := strings.ReplaceAll(X509ErrorString(c.code), "self signed", "self-signed")
		assert.Equal(t, c.text, got, "X509_V_ERR %d", c.code)
	}
}
