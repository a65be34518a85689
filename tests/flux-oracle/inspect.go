package main

import (
	"context"
	"fmt"

	"github.com/fluxcd/pkg/oci"
	gcrv1 "github.com/google/go-containerregistry/pkg/v1"
)

type inspectReport struct {
	Revision string            `json:"revision"`
	Manifest *gcrv1.Manifest   `json:"manifest"`
	Metadata *oci.Metadata     `json:"metadata"`
	Config   *gcrv1.ConfigFile `json:"config,omitempty"`
}

func inspect(ctx context.Context, refText string) (*inspectReport, error) {
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
	// As `flux pull artifact` reports it: the metadata comes from the annotations.
	report := &inspectReport{Revision: revision, Manifest: manifest, Metadata: oci.MetadataFromAnnotations(manifest.Annotations)}
	if cfg, err := img.ConfigFile(); err == nil {
		report.Config = cfg
	}
	return report, nil
}
