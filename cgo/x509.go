package cgo

/*
#include <openssl/x509_vfy.h>
#include "shim.h"
*/
import "C"

// OpenSSL's X509_V_ERR_* codes for the reasons a server certificate is
// most often rejected, as a client link's certificate verification reports
// them (callbacks.Event.Len of OPENSSL_PERFORM_SERVER_CERT_VERIFICATION).
// They are OpenSSL's ABI, taken from its header.
const (
	X509CertNotYetValid          = C.X509_V_ERR_CERT_NOT_YET_VALID
	X509CertHasExpired           = C.X509_V_ERR_CERT_HAS_EXPIRED
	X509DepthZeroSelfSigned      = C.X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT
	X509SelfSignedCertInChain    = C.X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN
	X509UnableToGetIssuerLocally = C.X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY
	X509UnableToVerifyLeaf       = C.X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE
	X509HostnameMismatch         = C.X509_V_ERR_HOSTNAME_MISMATCH
	X509IPAddressMismatch        = C.X509_V_ERR_IP_ADDRESS_MISMATCH
)

// X509ErrorString describes an X509_V_ERR_* code, as passed in
// callbacks.Event.Len of OPENSSL_PERFORM_SERVER_CERT_VERIFICATION.
func X509ErrorString(code int) string {
	return C.GoString(C.lwsgo_x509_error_string(C.int(code)))
}
