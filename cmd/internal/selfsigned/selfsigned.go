// Package selfsigned makes a throw-away TLS certificate for 127.0.0.1 and
// localhost, for tests and the parity scenarios: keys are made at run time
// and never stored in the repository.
package selfsigned

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// Cert is a self-signed ECDSA P-256 certificate (its own CA) and its key.
type Cert struct {
	CertFile, KeyFile string          // PEM files
	Pair              tls.Certificate // for Go servers
	Pool              *x509.CertPool  // trusts it, for Go clients
}

// Write makes a certificate valid from an hour ago for a day and writes it
// as cert.pem and key.pem into dir.
func Write(dir string) (*Cert, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: "127.0.0.1"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:              []string{"localhost"},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, err
	}
	cpem := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	kpem := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
	c := &Cert{CertFile: filepath.Join(dir, "cert.pem"), KeyFile: filepath.Join(dir, "key.pem"), Pool: x509.NewCertPool()}
	if err := os.WriteFile(c.CertFile, cpem, 0o600); err != nil {
		return nil, err
	}
	if err := os.WriteFile(c.KeyFile, kpem, 0o600); err != nil {
		return nil, err
	}
	c.Pool.AppendCertsFromPEM(cpem)
	if c.Pair, err = tls.X509KeyPair(cpem, kpem); err != nil {
		return nil, err
	}
	return c, nil
}
