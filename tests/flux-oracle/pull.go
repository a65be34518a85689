package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/fluxcd/pkg/sourceignore"
	"github.com/fluxcd/pkg/tar"
	gcrv1 "github.com/google/go-containerregistry/pkg/v1"
)

// fluxContentMediaType is the layer source-controller selects (OCIRepository
// spec.layerSelector.mediaType as flux bootstraps it).
const fluxContentMediaType = "application/vnd.cncf.flux.content.v1.tar+gzip"

type pullReport struct {
	Revision    string            `json:"revision"`
	Annotations map[string]string `json:"annotations"`
	Layer       string            `json:"layer"`
	// Files left out of the applied tree by source-controller's ignore rules.
	Ignored []string `json:"ignored"`
}

func pull(ctx context.Context, refText, dir string, raw bool) (*pullReport, error) {
	ref, err := parseRef(refText)
	if err != nil {
		return nil, err
	}
	img, revision, err := resolve(ctx, ref)
	if err != nil {
		return nil, err
	}
	manifest, err := img.Manifest()
	if err != nil {
		return nil, fmt.Errorf("failed to parse artifact manifest: %w", err)
	}
	layer, err := selectLayer(img)
	if err != nil {
		return nil, err
	}
	layerDigest, err := layer.Digest()
	if err != nil {
		return nil, err
	}
	blob, err := layer.Compressed()
	if err != nil {
		return nil, fmt.Errorf("failed to extract the layer from artifact: %w", err)
	}
	defer blob.Close()
	report := &pullReport{Revision: revision, Annotations: manifest.Annotations, Layer: layerDigest.String(), Ignored: []string{}}

	untarDir := dir
	if !raw {
		tmp, err := os.MkdirTemp("", "flux-oracle-untar-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(tmp)
		untarDir = tmp
	}
	// Exactly the call in source-controller's OCIRepositoryReconciler.reconcileSource.
	if err := tar.Untar(blob, untarDir, tar.WithMaxUntarSize(-1), tar.WithSkipSymlinks()); err != nil {
		return nil, fmt.Errorf("failed to extract layer contents from artifact: %w", err)
	}
	if raw {
		return report, nil
	}
	ignored, err := applyIgnoreRules(untarDir, dir)
	if err != nil {
		return nil, err
	}
	if ignored != nil {
		report.Ignored = ignored
	}
	return report, nil
}

// selectLayer is OCIRepositoryReconciler.selectLayer with a media-type layer selector.
func selectLayer(img gcrv1.Image) (gcrv1.Layer, error) {
	layers, err := img.Layers()
	if err != nil {
		return nil, fmt.Errorf("failed to parse artifact layers: %w", err)
	}
	if len(layers) < 1 {
		return nil, fmt.Errorf("no layers found in artifact")
	}
	for i, l := range layers {
		md, err := l.MediaType()
		if err != nil {
			return nil, fmt.Errorf("failed to determine the media type of layer[%v] from artifact: %w", i, err)
		}
		if string(md) == fluxContentMediaType {
			return l, nil
		}
	}
	return nil, fmt.Errorf("failed to find layer with media type '%s' in artifact", fluxContentMediaType)
}

// applyIgnoreRules copies the regular files of src that source-controller's
// reconcileArtifact keeps (sourceignore.LoadIgnorePatterns + the storage package's
// SourceIgnoreFilter) into dst, and returns the relative paths it left out.
func applyIgnoreRules(src, dst string) ([]string, error) {
	domain := strings.Split(src, string(filepath.Separator))
	ps, err := sourceignore.LoadIgnorePatterns(src, domain)
	if err != nil {
		return nil, fmt.Errorf("failed to load source ignore patterns: %w", err)
	}
	// storage.SourceIgnoreFilter, verbatim in behaviour: the default matcher when the tree
	// has no .sourceignore patterns, else VCS patterns plus the tree's own.
	matcher := sourceignore.NewDefaultMatcher(ps, domain)
	if len(ps) > 0 {
		matcher = sourceignore.NewMatcher(append(sourceignore.VCSPatterns(domain), ps...))
	}
	var ignored []string
	err = filepath.Walk(src, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		if m := fi.Mode(); !(m.IsRegular() || m.IsDir()) {
			return nil
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		if matcher.Match(strings.Split(p, string(filepath.Separator)), fi.IsDir()) {
			if !fi.IsDir() {
				ignored = append(ignored, filepath.ToSlash(rel))
			}
			return nil
		}
		if fi.IsDir() {
			return nil
		}
		return copyFile(p, filepath.Join(dst, rel), fi.Mode())
	})
	sort.Strings(ignored)
	return ignored, err
}

func copyFile(src, dst string, mode os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode.Perm())
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
