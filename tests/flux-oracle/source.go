package main

import (
	"context"
	"fmt"
	"net"
	"strings"

	"github.com/fluxcd/pkg/oci"
	"github.com/google/go-containerregistry/pkg/name"
	gcrv1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// refNameAnnotation is the OCI image-layout annotation naming a tag in index.json.
const refNameAnnotation = "org.opencontainers.image.ref.name"

// artifactRef is a parsed REF: either a registry reference or a tag in an OCI layout.
type artifactRef struct {
	registry   name.Reference // set for registries
	layoutPath string         // set for oci-layout:PATH:TAG
	tag        string
}

func (r artifactRef) String() string {
	if r.registry != nil {
		return r.registry.String()
	}
	return "oci-layout:" + r.layoutPath + ":" + r.tag
}

func parseRef(ref string) (artifactRef, error) {
	if rest, ok := strings.CutPrefix(ref, "oci-layout:"); ok {
		i := strings.LastIndex(rest, ":")
		if i <= 0 || i == len(rest)-1 {
			return artifactRef{}, usageError{fmt.Sprintf("invalid layout reference %q: expected oci-layout:PATH:TAG", ref)}
		}
		return artifactRef{layoutPath: rest[:i], tag: rest[i+1:]}, nil
	}
	plain := strings.TrimPrefix(ref, "oci://")
	var opts []name.Option
	if isLoopback(plain) {
		opts = append(opts, name.Insecure)
	}
	parsed, err := name.ParseReference(plain, opts...)
	if err != nil {
		return artifactRef{}, fmt.Errorf("invalid reference %q: %w", ref, err)
	}
	tag := ""
	if t, ok := parsed.(name.Tag); ok {
		tag = t.TagStr()
	}
	return artifactRef{registry: parsed, tag: tag}, nil
}

// isLoopback: the tests' registries listen on 127.0.0.1 / localhost and speak plain HTTP.
func isLoopback(ref string) bool {
	host := strings.SplitN(ref, "/", 2)[0]
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func remoteOptions(ctx context.Context) []remote.Option {
	// As source-controller's makeRemoteOptions, minus credentials (the test registry is open).
	return []remote.Option{remote.WithContext(ctx), remote.WithUserAgent(oci.UserAgent)}
}

// resolve returns the image REF names and source-controller's revision for it
// (`<tag>@<digest>`, as OCIRepositoryReconciler.getRevision computes it).
func resolve(ctx context.Context, ref artifactRef) (gcrv1.Image, string, error) {
	if ref.registry != nil {
		opts := remoteOptions(ctx)
		var digest gcrv1.Hash
		if desc, err := remote.Head(ref.registry, opts...); err == nil {
			digest = desc.Digest
		} else {
			got, err := remote.Get(ref.registry, opts...)
			if err != nil {
				return nil, "", fmt.Errorf("resolving %s: %w", ref, err)
			}
			digest = got.Descriptor.Digest
		}
		img, err := remote.Image(ref.registry, opts...)
		if err != nil {
			return nil, "", fmt.Errorf("failed to pull artifact from %s: %w", ref, err)
		}
		return img, fmt.Sprintf("%s@%s", ref.tag, digest), nil
	}
	path, err := layout.FromPath(ref.layoutPath)
	if err != nil {
		return nil, "", fmt.Errorf("opening OCI layout %s: %w", ref.layoutPath, err)
	}
	index, err := path.ImageIndex()
	if err != nil {
		return nil, "", fmt.Errorf("reading index of %s: %w", ref.layoutPath, err)
	}
	manifest, err := index.IndexManifest()
	if err != nil {
		return nil, "", fmt.Errorf("reading index.json of %s: %w", ref.layoutPath, err)
	}
	for _, desc := range manifest.Manifests {
		if desc.Annotations[refNameAnnotation] != ref.tag {
			continue
		}
		img, err := index.Image(desc.Digest)
		if err != nil {
			return nil, "", fmt.Errorf("reading %s: %w", ref, err)
		}
		return img, fmt.Sprintf("%s@%s", ref.tag, desc.Digest), nil
	}
	return nil, "", fmt.Errorf("tag %q not found in OCI layout %s", ref.tag, ref.layoutPath)
}
