package main

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/fluxcd/pkg/oci"
	"github.com/fluxcd/pkg/sourceignore"
	"github.com/fluxcd/pkg/tar"
	"github.com/google/go-containerregistry/pkg/crane"
)

type pushFlags struct {
	source, revision, created string
	resolveSymlinks           bool
}

type pushReport struct {
	Digest string `json:"digest"`
}

// excludeOCI is the flux CLI's default --ignore-paths for `flux push artifact`.
var excludeOCI = append(strings.Split(sourceignore.ExcludeVCS, ","), strings.Split(sourceignore.ExcludeExt, ",")...)

func push(ctx context.Context, dir, refText string, f pushFlags) (*pushReport, error) {
	ref, err := parseRef(refText)
	if err != nil {
		return nil, err
	}
	if ref.registry == nil {
		return nil, usageError{"push writes to registries only, as `flux push artifact` does"}
	}
	path := dir
	if f.resolveSymlinks {
		// As `flux push artifact --resolve-symlinks`: copy the tree with every symlink
		// replaced by its target's content, then push the copy.
		tmp, err := os.MkdirTemp("", "flux-oracle-resolved-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(tmp)
		if err := tar.ResolveSymlinks(dir, tmp); err != nil {
			return nil, fmt.Errorf("resolving symlinks in %s: %w", dir, err)
		}
		path = tmp
	}
	var craneOpts []crane.Option
	if isLoopback(ref.registry.Context().RegistryStr()) {
		craneOpts = append(craneOpts, crane.Insecure)
	}
	client := oci.NewClient(append(oci.DefaultOptions(), craneOpts...))
	meta := oci.Metadata{Source: f.source, Revision: f.revision, Created: f.created}
	digest, err := client.Push(ctx, ref.registry.String(), path,
		oci.WithPushMetadata(meta), oci.WithPushIgnorePaths(excludeOCI...))
	if err != nil {
		return nil, fmt.Errorf("pushing artifact failed: %w", err)
	}
	return &pushReport{Digest: digest[strings.LastIndex(digest, "@")+1:]}, nil
}
