// Command kube-test-server runs a real Kubernetes API server for mainline's test suite: the
// upstream kube-apiserver (k8s.io/kubernetes/cmd/kube-apiserver/app, the code a cluster runs)
// over an embedded single-member etcd (go.etcd.io/etcd/server/v3/embed), both in this one
// process, both on loopback.
//
//	kube-test-server --data-dir DIR [--exit-on-stdin-eof] [--ready-timeout 60s]
//
// DIR must be empty or absent. The server writes there a fresh CA (ca.crt), the serving
// certificate, the ServiceAccount signing key, an admin bearer token (admin.token, a member of
// system:masters, for the test fixture's setup only) and etcd's data. Authentication is bearer
// tokens only (a static token file and ServiceAccount tokens); authorization is RBAC, nothing
// else, so a request mainline makes as a ServiceAccount is allowed only by what its Role grants.
//
// When /readyz answers 200, one JSON line goes to stdout:
//
//	{"server":"https://127.0.0.1:PORT","ca_file":"DIR/ca.crt","admin_token_file":"DIR/admin.token",
//	 "client_cert_file":"DIR/client.crt","client_key_file":"DIR/client.key"}
//
// The process runs until SIGTERM or SIGINT (kube-apiserver's own signal handling), then
// stops the API server and etcd. With --exit-on-stdin-eof it also stops when its stdin closes,
// so a test process that dies (even by SIGKILL) never leaves a server behind. Diagnostics go
// to stderr and DIR/etcd.log.
//
// This program must never listen beyond loopback, print a token, or weaken the server
// (no anonymous auth, no AlwaysAllow authorizer, no insecure serving): the tests exist to prove
// mainline works against what a real cluster enforces.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"k8s.io/kubernetes/cmd/kube-apiserver/app"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintf(os.Stderr, "kube-test-server: %v\n", err)
		if errors.Is(err, errUsage) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

// errUsage marks a bad command line (exit 2, as flag parsing errors do).
var errUsage = errors.New("usage")

func run() error {
	dataDir := flag.String("data-dir", "", "an empty or absent directory for certificates, tokens and etcd data (required)")
	stdinEOF := flag.Bool("exit-on-stdin-eof", false, "stop (as on SIGTERM) when stdin reaches end of file, i.e. when the parent is gone")
	readyTimeout := flag.Duration("ready-timeout", 60*time.Second, "how long to wait for /readyz before giving up")
	flag.Parse()
	if *dataDir == "" || flag.NArg() != 0 {
		flag.Usage()
		return fmt.Errorf("%w: --data-dir DIR is required and nothing else is accepted", errUsage)
	}
	dir, err := filepath.Abs(*dataDir)
	if err != nil {
		return fmt.Errorf("data dir %q: %w", *dataDir, err)
	}
	if err := ensureEmptyDir(dir); err != nil {
		return err
	}
	if *stdinEOF {
		go func() {
			_, _ = io.Copy(io.Discard, os.Stdin)
			// The same path as an operator's SIGTERM: kube-apiserver drains and returns.
			_ = syscall.Kill(os.Getpid(), syscall.SIGTERM)
		}()
	}
	files, err := writePKI(dir)
	if err != nil {
		return err
	}
	etcd, err := startEtcd(dir)
	if err != nil {
		return err
	}
	defer etcd.Close()

	port, err := freeLoopbackPort()
	if err != nil {
		return err
	}
	cmd := app.NewAPIServerCommand()
	cmd.SetArgs(apiserverArgs(files, etcd.clientURL, port))
	served := make(chan error, 1)
	go func() { served <- cmd.Execute() }()

	server := fmt.Sprintf("https://127.0.0.1:%d", port)
	ctx, cancel := context.WithTimeout(context.Background(), *readyTimeout)
	defer cancel()
	if err := waitReady(ctx, server, files, served); err != nil {
		return err
	}
	fmt.Printf("{\"server\":%q,\"ca_file\":%q,\"admin_token_file\":%q,\"client_cert_file\":%q,\"client_key_file\":%q}\n",
		server, files.caCert, files.adminToken, files.clientCert, files.clientKey)

	select {
	case err := <-served:
		if err != nil {
			return fmt.Errorf("kube-apiserver stopped: %w", err)
		}
		return nil
	case err := <-etcd.failed():
		return fmt.Errorf("etcd stopped: %w", err)
	}
}

// apiserverArgs is the command line of a kube-apiserver that enforces what a cluster enforces:
// token authentication, RBAC only, TLS from our CA, ServiceAccount tokens signed by our key.
func apiserverArgs(f pkiFiles, etcdURL string, port int) []string {
	return []string{
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		fmt.Sprintf("--secure-port=%d", port),
		"--tls-cert-file=" + f.serverCert,
		"--tls-private-key-file=" + f.serverKey,
		"--client-ca-file=" + f.caCert,
		"--token-auth-file=" + f.tokenCSV,
		"--anonymous-auth=false",
		"--authorization-mode=RBAC",
		"--etcd-servers=" + etcdURL,
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file=" + f.saKey,
		"--service-account-signing-key-file=" + f.saKey,
		"--service-cluster-ip-range=10.96.0.0/24",
		// No controllers run beside this server: nothing would consume the Endpoints of the
		// kubernetes Service, and priority-and-fairness bookkeeping only costs start-up time.
		"--endpoint-reconciler-type=none",
		"--enable-priority-and-fairness=false",
		"--profiling=false",
		"--cert-dir=" + filepath.Join(f.dir, "cert-dir"),
		"--v=0",
	}
}
