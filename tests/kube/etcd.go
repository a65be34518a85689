package main

import (
	"fmt"
	"net/url"
	"path/filepath"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
)

// embeddedEtcd is a single-member etcd on loopback ports the kernel picked, private to one
// API server: nothing else is told its address.
type embeddedEtcd struct {
	e         *embed.Etcd
	clientURL string
}

func startEtcd(dir string) (*embeddedEtcd, error) {
	cfg := embed.NewConfig()
	cfg.Name = "kube-test"
	cfg.Dir = filepath.Join(dir, "etcd")
	cfg.LogLevel = "warn"
	cfg.LogOutputs = []string{filepath.Join(dir, "etcd.log")}
	// A test server's data lives as long as its test: durability across power loss buys
	// nothing here and fsync costs seconds per test on a shared CI disk.
	cfg.UnsafeNoFsync = true
	loop := url.URL{Scheme: "http", Host: "127.0.0.1:0"}
	cfg.ListenClientUrls = []url.URL{loop}
	cfg.AdvertiseClientUrls = []url.URL{loop}
	cfg.ListenPeerUrls = []url.URL{loop}
	cfg.AdvertisePeerUrls = []url.URL{loop}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return nil, fmt.Errorf("starting embedded etcd in %s: %w (see %s)", cfg.Dir, err, cfg.LogOutputs[0])
	}
	select {
	case <-e.Server.ReadyNotify():
	case <-time.After(30 * time.Second):
		e.Close()
		return nil, fmt.Errorf("embedded etcd not ready after 30s (see %s)", cfg.LogOutputs[0])
	}
	addr := e.Clients[0].Addr().String()
	return &embeddedEtcd{e: e, clientURL: "http://" + addr}, nil
}

func (x *embeddedEtcd) failed() <-chan error { return x.e.Err() }

func (x *embeddedEtcd) Close() { x.e.Close() }
