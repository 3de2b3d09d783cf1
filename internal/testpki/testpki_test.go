package testpki

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"net"
	"testing"
)

// A certificate issued by a CA verifies against its pool for 127.0.0.1,
// as a server and as a client; against another CA's pool it does not.
func TestIssueVerifies(t *testing.T) {
	ca, other := New(t, "test CA"), New(t, "other CA")
	a, b := ca.Issue(t, "a"), ca.Issue(t, "b")
	leafA, err := x509.ParseCertificate(a.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	leafB, err := x509.ParseCertificate(b.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	if leafA.SerialNumber.Cmp(leafB.SerialNumber) == 0 {
		t.Errorf("two certificates with serial %v", leafA.SerialNumber)
	}
	for _, usage := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
		opts := x509.VerifyOptions{Roots: ca.Pool(), DNSName: "127.0.0.1", KeyUsages: []x509.ExtKeyUsage{usage}}
		if _, err := leafA.Verify(opts); err != nil {
			t.Errorf("usage %v: %v", usage, err)
		}
		opts.Roots = other.Pool()
		if _, err := leafA.Verify(opts); err == nil {
			t.Errorf("usage %v: verified against another CA", usage)
		}
	}
	if err := leafA.VerifyHostname(net.IPv4(127, 0, 0, 1).String()); err != nil {
		t.Error(err)
	}
}

// The PEM forms load as a key pair and a CA bundle.
func TestPEM(t *testing.T) {
	ca := New(t, "test CA")
	certPEM, keyPEM := ca.IssuePEM(t, "a")
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := pem.Decode(keyPEM); b == nil || b.Type != "PRIVATE KEY" {
		t.Errorf("key PEM block %v", b)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca.CertPEM()) {
		t.Fatal("CA PEM holds no certificate")
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Error(err)
	}
}
