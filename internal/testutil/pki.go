package testutil

import (
	"crypto"
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

// Certificates are ECDSA P-256, which libwebsockets 4.1.6 over OpenSSL 3
// loads and serves as readily as RSA, made at run time and written as PEM
// files (PKCS #8 keys).

// PKI is a set of PEM files in Dir:
//
//	ca.pem                   root CA (the one to trust)
//	int.pem                  intermediate CA, signed by the root
//	server.pem, server.key   leaf for 127.0.0.1, ::1 and "localhost", signed
//	                         by the intermediate
//	chain.pem                server.pem + int.pem (what a server sends)
//	expired-chain.pem/.key   like chain.pem, but the leaf expired yesterday
//	wrongname-chain.pem/.key like chain.pem, for "wrong.example" only
//	selfsigned.pem/.key      self-signed leaf for 127.0.0.1 and "localhost"
//	otherca.pem              an unrelated root CA
//	client.pem, client.key   client certificate (mutual TLS), signed by the
//	                         root
//	otherkey.key             a key that matches no certificate
type PKI struct {
	Dir string

	CA, OtherCA string

	ServerCert, ServerChain, ServerKey string
	ExpiredChain, ExpiredKey           string
	WrongNameChain, WrongNameKey       string
	SelfSigned, SelfSignedKey          string
	ClientCert, ClientKey              string
	OtherKey                           string

	caCert *x509.Certificate
}

// NewPKI makes the PKI's files in dir.
func NewPKI(dir string) (*PKI, error) {
	p := &PKI{Dir: dir}
	w := &pemWriter{dir: dir}
	now := time.Now()
	root := w.issue(valid(caTemplate("lwsgate test root CA"), now), nil)
	p.caCert = root.cert
	inter := valid(caTemplate("lwsgate test intermediate CA"), now)
	inter.MaxPathLen, inter.MaxPathLenZero = 0, true
	mid := w.issue(inter, root)
	other := w.issue(valid(caTemplate("lwsgate unrelated CA"), now), nil)

	server := w.issue(valid(localNames(leafTemplate("localhost", x509.ExtKeyUsageServerAuth)), now), mid)
	expTpl := localNames(leafTemplate("localhost (expired)", x509.ExtKeyUsageServerAuth))
	expTpl.NotBefore, expTpl.NotAfter = now.Add(-48*time.Hour), now.Add(-24*time.Hour)
	expired := w.issue(expTpl, mid)
	wrongTpl := valid(leafTemplate("wrong.example", x509.ExtKeyUsageServerAuth), now)
	wrongTpl.DNSNames = []string{"wrong.example"}
	wrong := w.issue(wrongTpl, mid)
	// A self-signed leaf: OpenSSL only calls a certificate self-signed
	// (X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT) when its key usage allows
	// signing certificates.
	ssTpl := valid(localNames(leafTemplate("localhost (self-signed)", x509.ExtKeyUsageServerAuth)), now)
	ssTpl.KeyUsage |= x509.KeyUsageCertSign
	self := w.issue(ssTpl, nil)
	client := w.issue(valid(leafTemplate("lwsgate test client", x509.ExtKeyUsageClientAuth), now), root)

	p.CA = w.file("ca.pem", w.certPEM(root))
	p.OtherCA = w.file("otherca.pem", w.certPEM(other))
	w.file("int.pem", w.certPEM(mid))
	p.ServerCert = w.file("server.pem", w.certPEM(server))
	p.ServerChain = w.file("chain.pem", w.certPEM(server), w.certPEM(mid))
	p.ServerKey = w.file("server.key", w.keyPEM(server.key))
	p.ExpiredChain = w.file("expired-chain.pem", w.certPEM(expired), w.certPEM(mid))
	p.ExpiredKey = w.file("expired.key", w.keyPEM(expired.key))
	p.WrongNameChain = w.file("wrongname-chain.pem", w.certPEM(wrong), w.certPEM(mid))
	p.WrongNameKey = w.file("wrongname.key", w.keyPEM(wrong.key))
	p.SelfSigned = w.file("selfsigned.pem", w.certPEM(self))
	p.SelfSignedKey = w.file("selfsigned.key", w.keyPEM(self.key))
	p.ClientCert = w.file("client.pem", w.certPEM(client))
	p.ClientKey = w.file("client.key", w.keyPEM(client.key))
	p.OtherKey = w.file("otherkey.key", w.keyPEM(w.newKey()))
	if w.err != nil {
		return nil, w.err
	}
	return p, nil
}

// Pool returns a pool holding the root CA, for Go clients and servers.
func (p *PKI) Pool() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(p.caCert)
	return pool
}

// Cert is a self-signed certificate (its own CA) and its key.
type Cert struct {
	CertFile, KeyFile string          // PEM files
	Pair              tls.Certificate // for Go servers
	Pool              *x509.CertPool  // trusts it, for Go clients
}

// SelfSigned makes a certificate for 127.0.0.1 and "localhost", its own
// CA, valid from an hour ago for a day, and writes it as cert.pem and
// key.pem into dir.
func SelfSigned(dir string) (*Cert, error) {
	w := &pemWriter{dir: dir}
	tpl := valid(&x509.Certificate{
		Subject:               pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:              []string{"localhost"},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}, time.Now())
	n := w.issue(tpl, nil)
	cpem, kpem := w.certPEM(n), w.keyPEM(n.key)
	c := &Cert{CertFile: w.file("cert.pem", cpem), KeyFile: w.file("key.pem", kpem), Pool: x509.NewCertPool()}
	if w.err != nil {
		return nil, w.err
	}
	c.Pool.AddCert(n.cert)
	var err error
	if c.Pair, err = tls.X509KeyPair(cpem, kpem); err != nil {
		return nil, err
	}
	return c, nil
}

// valid makes tpl valid from an hour before now for a day.
func valid(tpl *x509.Certificate, now time.Time) *x509.Certificate {
	tpl.NotBefore, tpl.NotAfter = now.Add(-time.Hour), now.Add(24*time.Hour)
	return tpl
}

// localNames makes tpl a certificate for the loopback addresses and
// "localhost".
func localNames(tpl *x509.Certificate) *x509.Certificate {
	tpl.DNSNames = []string{"localhost"}
	tpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}
	return tpl
}

func caTemplate(cn string) *x509.Certificate {
	return &x509.Certificate{
		Subject:               pkix.Name{CommonName: cn, Organization: []string{"lwsgate tests"}},
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
}

func leafTemplate(cn string, usage x509.ExtKeyUsage) *x509.Certificate {
	return &x509.Certificate{
		Subject:               pkix.Name{CommonName: cn, Organization: []string{"lwsgate tests"}},
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{usage},
	}
}

// pkiNode is one certificate with its key, to sign others.
type pkiNode struct {
	cert *x509.Certificate
	der  []byte
	key  *ecdsa.PrivateKey
}

// pemWriter makes certificates and writes PEM files into dir, keeping the
// first error (later steps then do nothing).
type pemWriter struct {
	dir string
	err error
}

func (w *pemWriter) newKey() *ecdsa.PrivateKey {
	if w.err != nil {
		return nil
	}
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	w.err = err
	return k
}

// issue signs tpl with issuer's key (nil: self-signed) and a new key.
func (w *pemWriter) issue(tpl *x509.Certificate, issuer *pkiNode) *pkiNode {
	key := w.newKey()
	if w.err != nil {
		return &pkiNode{}
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 126))
	if err != nil {
		w.err = err
		return &pkiNode{}
	}
	tpl.SerialNumber = serial
	parent, signer := tpl, crypto.Signer(key)
	if issuer != nil {
		parent, signer = issuer.cert, issuer.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tpl, parent, key.Public(), signer)
	if err != nil {
		w.err = err
		return &pkiNode{}
	}
	cert, err := x509.ParseCertificate(der)
	w.err = err
	return &pkiNode{cert: cert, der: der, key: key}
}

func (w *pemWriter) certPEM(n *pkiNode) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: n.der})
}

func (w *pemWriter) keyPEM(k *ecdsa.PrivateKey) []byte {
	if w.err != nil {
		return nil
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	w.err = err
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

// file writes the blocks into the file name of dir and returns its path.
func (w *pemWriter) file(name string, blocks ...[]byte) string {
	path := filepath.Join(w.dir, name)
	if w.err != nil {
		return path
	}
	var out []byte
	for _, b := range blocks {
		out = append(out, b...)
	}
	w.err = os.WriteFile(path, out, 0o600)
	return path
}
