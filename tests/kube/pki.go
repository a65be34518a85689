package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// pkiFiles are the paths of everything the server reads and the fixture needs.
type pkiFiles struct {
	dir, caCert, serverCert, serverKey, saKey, tokenCSV, adminToken string
	// A client certificate signed by the same CA (the server's --client-ca-file): user
	// mainline-cert-user in group mainline-cert-group, for kubeconfigs that authenticate with
	// client-certificate / client-key.
	clientCert, clientKey string
}

func ensureEmptyDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("creating data dir %s: %w", dir, err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("reading data dir %s: %w", dir, err)
	}
	if len(entries) != 0 {
		return fmt.Errorf("data dir %s is not empty: give a fresh directory, a server never reuses another's certificates or etcd data", dir)
	}
	return nil
}

// writePKI makes a throwaway CA, a serving certificate for 127.0.0.1 and localhost signed by
// it, a ServiceAccount signing key and a random admin token. Private keys and the token are
// written 0600 and never printed.
func writePKI(dir string) (pkiFiles, error) {
	f := pkiFiles{
		dir:        dir,
		caCert:     filepath.Join(dir, "ca.crt"),
		serverCert: filepath.Join(dir, "apiserver.crt"),
		serverKey:  filepath.Join(dir, "apiserver.key"),
		saKey:      filepath.Join(dir, "sa.key"),
		tokenCSV:   filepath.Join(dir, "tokens.csv"),
		adminToken: filepath.Join(dir, "admin.token"),
		clientCert: filepath.Join(dir, "client.crt"),
		clientKey:  filepath.Join(dir, "client.key"),
	}
	now := time.Now()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return f, err
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "mainline-test-ca"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return f, fmt.Errorf("signing the test CA: %w", err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return f, err
	}
	srvKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return f, err
	}
	srvTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "kube-apiserver"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{"localhost", "kubernetes", "kubernetes.default.svc"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	srvDER, err := x509.CreateCertificate(rand.Reader, srvTmpl, ca, &srvKey.PublicKey, caKey)
	if err != nil {
		return f, fmt.Errorf("signing the serving certificate: %w", err)
	}
	cliKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return f, err
	}
	cliTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(3),
		Subject:      pkix.Name{CommonName: "mainline-cert-user", Organization: []string{"mainline-cert-group"}},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	cliDER, err := x509.CreateCertificate(rand.Reader, cliTmpl, ca, &cliKey.PublicKey, caKey)
	if err != nil {
		return f, fmt.Errorf("signing the client certificate: %w", err)
	}
	saKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return f, err
	}
	token := make([]byte, 32)
	if _, err := rand.Read(token); err != nil {
		return f, err
	}
	adminToken := hex.EncodeToString(token)

	writes := []struct {
		path string
		data []byte
		mode os.FileMode
	}{
		{f.caCert, pemBlock("CERTIFICATE", caDER), 0o644},
		{f.serverCert, pemBlock("CERTIFICATE", srvDER), 0o644},
		{f.serverKey, ecKeyPEM(srvKey), 0o600},
		{f.saKey, ecKeyPEM(saKey), 0o600},
		// token,user,uid,"group1,group2": the static token file format of kube-apiserver.
		{f.tokenCSV, []byte(adminToken + ",mainline-test-admin,mainline-test-admin,\"system:masters\"\n"), 0o600},
		{f.adminToken, []byte(adminToken), 0o600},
		{f.clientCert, pemBlock("CERTIFICATE", cliDER), 0o644},
		{f.clientKey, ecKeyPEM(cliKey), 0o600},
	}
	for _, w := range writes {
		if w.data == nil {
			return f, errors.New("encoding a private key failed")
		}
		if err := os.WriteFile(w.path, w.data, w.mode); err != nil {
			return f, fmt.Errorf("writing %s: %w", w.path, err)
		}
	}
	return f, nil
}

func pemBlock(kind string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der})
}

func ecKeyPEM(k *ecdsa.PrivateKey) []byte {
	der, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		return nil
	}
	return pemBlock("EC PRIVATE KEY", der)
}

// freeLoopbackPort asks the kernel for a free port. kube-apiserver binds it itself a moment
// later; if another process takes it in between, the server fails to start with "address
// already in use" and the fixture starts a new one.
func freeLoopbackPort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free loopback port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
