package gateway

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
)

// The public keys that verify an identity provider's tokens: from PEM
// files (auth.keys) and from JSON Web Key Sets (auth.jwks_url). Each key
// is pinned to one algorithm, which is the one a token must name: RS256
// for RSA keys of 2048 bits and more, ES256 for P-256 keys, EdDSA for
// Ed25519 keys. Symmetric keys are never taken from either.

// minRSABits is the smallest RSA key taken (NIST SP 800-131A).
const minRSABits = 2048

// loadKey reads a key of auth.keys. Errors name the file.
func loadKey(kc KeyConfig) (*verifyKey, error) {
	data, err := os.ReadFile(kc.File)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("%s: no PEM block", kc.File)
	}
	var pub any
	switch block.Type {
	case "PUBLIC KEY":
		pub, err = x509.ParsePKIXPublicKey(block.Bytes)
	case "RSA PUBLIC KEY":
		pub, err = x509.ParsePKCS1PublicKey(block.Bytes)
	case "CERTIFICATE":
		var cert *x509.Certificate
		if cert, err = x509.ParseCertificate(block.Bytes); err == nil {
			pub = cert.PublicKey
		}
	default:
		return nil, fmt.Errorf("%s: a PEM %q block; want PUBLIC KEY, RSA PUBLIC KEY or CERTIFICATE (never a private key)", kc.File, block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %v", kc.File, err)
	}
	if err := keyFitsAlg(pub, kc.Alg); err != nil {
		return nil, fmt.Errorf("%s: %v", kc.File, err)
	}
	return &verifyKey{kid: kc.Kid, alg: kc.Alg, key: pub}, nil
}

// keyFitsAlg checks that pub is a key alg verifies with.
func keyFitsAlg(pub any, alg string) error {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if alg != algRS256 {
			return fmt.Errorf("an RSA key, for RS256, not %s", alg)
		}
		if k.N.BitLen() < minRSABits {
			return fmt.Errorf("an RSA key of %d bits; at least %d", k.N.BitLen(), minRSABits)
		}
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() {
			return fmt.Errorf("an ECDSA key on %s; ES256 needs P-256", k.Curve.Params().Name)
		}
		if alg != algES256 {
			return fmt.Errorf("a P-256 key, for ES256, not %s", alg)
		}
	case ed25519.PublicKey:
		if alg != algEdDSA {
			return fmt.Errorf("an Ed25519 key, for EdDSA, not %s", alg)
		}
	default:
		return fmt.Errorf("a %T key: want RSA, P-256 or Ed25519", pub)
	}
	return nil
}

// jwk is one key of a JSON Web Key Set (RFC 7517, 7518, 8037): the
// members the gateway reads. Others are ignored, as RFC 7517 asks.
//
// Concurrency: a value.
type jwk struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Use string `json:"use"`
	Alg string `json:"alg"`
	N   string `json:"n"`
	E   string `json:"e"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Y   string `json:"y"`
	D   string `json:"d"`
}

// keySet is a parsed JWKS: the keys it can verify with, by kid, and the
// kids of keys it cannot (another type or algorithm, or bad), with why.
//
// Concurrency: read-only once parsed; a refresh replaces it whole.
type keySet struct {
	keys     map[string]*verifyKey
	unusable map[string]string
}

// maxJWKS bounds a JWKS document: real ones are a few KB.
const maxJWKS = 1 << 20

// parseJWKS parses a JSON Web Key Set strictly: a key whose members are
// malformed is set aside with why, never half taken. A key is taken when
// it has a kid, is for signatures (use absent or "sig"), and is an RSA,
// P-256 or Ed25519 public key whose alg, when given, is its own; a kid
// two such keys share is set aside. A document that is not a key set is
// an error.
func parseJWKS(data []byte) (*keySet, error) {
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("not a JWKS: %v", err)
	}
	if doc.Keys == nil {
		return nil, errors.New("not a JWKS: no keys member")
	}
	ks := &keySet{keys: map[string]*verifyKey{}, unusable: map[string]string{}}
	for i, raw := range doc.Keys {
		var j jwk
		if err := json.Unmarshal(raw, &j); err != nil {
			return nil, fmt.Errorf("keys[%d]: %v", i, err)
		}
		if j.Kid == "" {
			ks.unusable[fmt.Sprintf("keys[%d]", i)] = "no kid"
			continue
		}
		k, err := j.verifyKey()
		switch {
		case err == nil && ks.keys[j.Kid] != nil:
			// Two keys for signatures under one kid: which one a token
			// means cannot be known.
			delete(ks.keys, j.Kid)
			ks.unusable[j.Kid] = "kid used by two signing keys"
		case err == nil && ks.unusable[j.Kid] != "kid used by two signing keys":
			ks.keys[j.Kid] = k
			delete(ks.unusable, j.Kid) // another key of that kid was not for signatures
		case err != nil && ks.keys[j.Kid] == nil && ks.unusable[j.Kid] == "":
			ks.unusable[j.Kid] = err.Error()
		}
	}
	return ks, nil
}

// verifyKey turns a JWK into a key pinned to its algorithm.
func (j *jwk) verifyKey() (*verifyKey, error) {
	if j.Use != "" && j.Use != "sig" {
		return nil, fmt.Errorf("use %q, not sig", j.Use)
	}
	if j.D != "" {
		return nil, errors.New("a private key (d): never taken from a key set")
	}
	var pub any
	var alg string
	switch j.Kty {
	case "RSA":
		alg = algRS256
		n, err := b64uint(j.N, "n")
		if err != nil {
			return nil, err
		}
		e, err := b64uint(j.E, "e")
		if err != nil {
			return nil, err
		}
		if !e.IsInt64() || e.Int64() < 3 || e.Int64() > 1<<31-1 || e.Bit(0) == 0 {
			return nil, errors.New("e: not an RSA public exponent")
		}
		pub = &rsa.PublicKey{N: n, E: int(e.Int64())}
	case "EC":
		alg = algES256
		if j.Crv != "P-256" {
			return nil, fmt.Errorf("crv %q: only P-256", j.Crv)
		}
		x, errX := b64fixed(j.X, "x", 32)
		y, errY := b64fixed(j.Y, "y", 32)
		if err := errors.Join(errX, errY); err != nil {
			return nil, err
		}
		k, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, x...), y...))
		if err != nil {
			return nil, fmt.Errorf("x, y: %v", err)
		}
		pub = k
	case "OKP":
		alg = algEdDSA
		if j.Crv != "Ed25519" {
			return nil, fmt.Errorf("crv %q: only Ed25519", j.Crv)
		}
		x, err := b64fixed(j.X, "x", ed25519.PublicKeySize)
		if err != nil {
			return nil, err
		}
		pub = ed25519.PublicKey(x)
	default:
		return nil, fmt.Errorf("kty %q: want RSA, EC or OKP", j.Kty)
	}
	if j.Alg != "" && j.Alg != alg {
		return nil, fmt.Errorf("alg %q: this gateway verifies %s keys with %s only", j.Alg, j.Kty, alg)
	}
	if err := keyFitsAlg(pub, alg); err != nil {
		return nil, err
	}
	return &verifyKey{kid: j.Kid, alg: alg, key: pub}, nil
}

// b64 decodes a JWK member: base64url without padding (RFC 7515
// section 2), nothing else.
func b64(s, member string) ([]byte, error) {
	if s == "" {
		return nil, fmt.Errorf("%s: missing", member)
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("%s: not base64url without padding", member)
	}
	return b, nil
}

// b64uint decodes an unsigned big-endian integer member without leading
// zero bytes (RFC 7518 section 2).
func b64uint(s, member string) (*big.Int, error) {
	b, err := b64(s, member)
	if err != nil {
		return nil, err
	}
	if b[0] == 0 {
		return nil, fmt.Errorf("%s: leading zero bytes", member)
	}
	return new(big.Int).SetBytes(b), nil
}

// b64fixed decodes a member of exactly n bytes.
func b64fixed(s, member string, n int) ([]byte, error) {
	b, err := b64(s, member)
	if err == nil && len(b) != n {
		err = fmt.Errorf("%s: %d bytes, want %d", member, len(b), n)
	}
	return b, err
}
