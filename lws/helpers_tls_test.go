package lws

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
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// testPKI is a set of PEM files made at test time (no key is in git), all
// with ECDSA P-256 keys, which libwebsockets 4.1.6 over OpenSSL 3 loads
// and serves as readily as RSA ones.
//
//	ca.pem                  root CA (the one to trust)
//	int.pem                 intermediate CA, signed by the root
//	server.pem, server.key  leaf for 127.0.0.1, ::1 and "localhost", signed
//	                        by the intermediate
//	chain.pem               server.pem + int.pem (what a server sends)
//	expired-chain.pem/.key  like chain.pem, but the leaf expired yesterday
//	wrongname-chain.pem/.key like chain.pem, for "wrong.example" only
//	selfsigned.pem/.key     self-signed leaf for 127.0.0.1 and "localhost"
//	otherca.pem             an unrelated root CA
//	client.pem, client.key  client certificate (mutual TLS), signed by the
//	                        root
//	otherkey.key            a key that matches no certificate
type testPKI struct {
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

// pkiNode is one certificate with its key, to sign others.
type pkiNode struct {
	cert *x509.Certificate
	der  []byte
	key  *ecdsa.PrivateKey
}

func newTestPKI(t testing.TB) *testPKI {
	t.Helper()
	dir := t.TempDir()
	p := &testPKI{Dir: dir}
	now := time.Now()
	valid := func(tpl *x509.Certificate) *x509.Certificate {
		tpl.NotBefore, tpl.NotAfter = now.Add(-time.Hour), now.Add(24*time.Hour)
		return tpl
	}
	localNames := func(tpl *x509.Certificate) *x509.Certificate {
		tpl.DNSNames = []string{"localhost"}
		tpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}
		return tpl
	}
	caTpl := func(cn string) *x509.Certificate {
		return valid(&x509.Certificate{
			Subject:               pkix.Name{CommonName: cn, Organization: []string{"lwsgate tests"}},
			IsCA:                  true,
			BasicConstraintsValid: true,
			KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		})
	}
	leafTpl := func(cn string, usage x509.ExtKeyUsage) *x509.Certificate {
		return &x509.Certificate{
			Subject:               pkix.Name{CommonName: cn, Organization: []string{"lwsgate tests"}},
			BasicConstraintsValid: true,
			KeyUsage:              x509.KeyUsageDigitalSignature,
			ExtKeyUsage:           []x509.ExtKeyUsage{usage},
		}
	}

	root := pkiIssue(t, caTpl("lwsgate test root CA"), nil)
	p.caCert = root.cert
	inter := caTpl("lwsgate test intermediate CA")
	inter.MaxPathLen, inter.MaxPathLenZero = 0, true
	mid := pkiIssue(t, inter, root)
	other := pkiIssue(t, caTpl("lwsgate unrelated CA"), nil)

	server := pkiIssue(t, valid(localNames(leafTpl("localhost", x509.ExtKeyUsageServerAuth))), mid)
	expTpl := localNames(leafTpl("localhost (expired)", x509.ExtKeyUsageServerAuth))
	expTpl.NotBefore, expTpl.NotAfter = now.Add(-48*time.Hour), now.Add(-24*time.Hour)
	expired := pkiIssue(t, expTpl, mid)
	wrongTpl := valid(leafTpl("wrong.example", x509.ExtKeyUsageServerAuth))
	wrongTpl.DNSNames = []string{"wrong.example"}
	wrong := pkiIssue(t, wrongTpl, mid)
	// A self-signed leaf: OpenSSL only calls a certificate self-signed
	// (X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT) when its key usage allows
	// signing certificates.
	ssTpl := valid(localNames(leafTpl("localhost (self-signed)", x509.ExtKeyUsageServerAuth)))
	ssTpl.KeyUsage |= x509.KeyUsageCertSign
	self := pkiIssue(t, ssTpl, nil)
	client := pkiIssue(t, valid(leafTpl("lwsgate test client", x509.ExtKeyUsageClientAuth)), root)

	w := func(name string, blocks ...[]byte) string {
		path := filepath.Join(dir, name)
		var out []byte
		for _, b := range blocks {
			out = append(out, b...)
		}
		require.NoError(t, os.WriteFile(path, out, 0o600))
		return path
	}
	p.CA = w("ca.pem", certPEM(root))
	p.OtherCA = w("otherca.pem", certPEM(other))
	w("int.pem", certPEM(mid))
	p.ServerCert = w("server.pem", certPEM(server))
	p.ServerChain = w("chain.pem", certPEM(server), certPEM(mid))
	p.ServerKey = w("server.key", keyPEM(t, server.key))
	p.ExpiredChain = w("expired-chain.pem", certPEM(expired), certPEM(mid))
	p.ExpiredKey = w("expired.key", keyPEM(t, expired.key))
	p.WrongNameChain = w("wrongname-chain.pem", certPEM(wrong), certPEM(mid))
	p.WrongNameKey = w("wrongname.key", keyPEM(t, wrong.key))
	p.SelfSigned = w("selfsigned.pem", certPEM(self))
	p.SelfSignedKey = w("selfsigned.key", keyPEM(t, self.key))
	p.ClientCert = w("client.pem", certPEM(client))
	p.ClientKey = w("client.key", keyPEM(t, client.key))
	p.OtherKey = w("otherkey.key", keyPEM(t, pkiKey(t)))
	return p
}

func pkiKey(t testing.TB) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	return k
}

// pkiIssue signs tpl with issuer's key (nil: self-signed) and a new key.
func pkiIssue(t testing.TB, tpl *x509.Certificate, issuer *pkiNode) *pkiNode {
	t.Helper()
	key := pkiKey(t)
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 126))
	require.NoError(t, err)
	tpl.SerialNumber = serial
	parent, signer := tpl, crypto.Signer(key)
	if issuer != nil {
		parent, signer = issuer.cert, issuer.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tpl, parent, key.Public(), signer)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	return &pkiNode{cert: cert, der: der, key: key}
}

func certPEM(n *pkiNode) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: n.der})
}

func keyPEM(t testing.TB, k *ecdsa.PrivateKey) []byte {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	require.NoError(t, err)
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

// Pool returns a pool holding the root CA, for Go clients and servers.
func (p *testPKI) Pool() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(p.caCert)
	return pool
}

// KeyPair loads a certificate (chain) file and its key for a Go server or
// client.
func (p *testPKI) KeyPair(t testing.TB, certFile, keyFile string) tls.Certificate {
	t.Helper()
	c, err := tls.LoadX509KeyPair(certFile, keyFile)
	require.NoError(t, err)
	return c
}
