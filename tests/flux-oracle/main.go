// Command flux-oracle runs Flux's own artifact code against mainline's artifacts, so the
// test suite judges mainline by what Flux actually does rather than by what we believe it
// does.
//
//	flux-oracle pull REF DIR [--raw]
//	    Fetch REF as source-controller's OCIRepository reconciler does (resolve the tag,
//	    select the layer by media type application/vnd.cncf.flux.content.v1.tar+gzip,
//	    tar.Untar with WithMaxUntarSize(-1) and WithSkipSymlinks()), then keep only the files
//	    source-controller archives for kustomize-controller (its .sourceignore and default
//	    exclusion rules). --raw stops after the untar. Prints a JSON report.
//	flux-oracle push DIR REF --source S --revision R [--resolve-symlinks] [--created T]
//	    Push DIR as `flux push artifact` does: fluxcd/pkg/oci's Client.Push with the CLI's
//	    default --ignore-paths (VCS files and archives/images), --resolve-symlinks through
//	    fluxcd/pkg/tar.ResolveSymlinks. Registries only, as flux.
//	flux-oracle inspect REF
//	    The manifest and annotations as Flux reads them, as JSON.
//
// REF is HOST[:PORT]/REPO:TAG (an optional oci:// prefix is accepted; loopback registries are
// spoken to over plain HTTP, as `--insecure` would) or oci-layout:PATH:TAG, an OCI image
// layout read with go-containerregistry's layout package.
//
// This program must never carry its own re-implementation of what Flux does: every step that
// decides bytes or paths is a call into the pinned Flux or go-containerregistry modules.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintf(os.Stderr, "flux-oracle: %v\n", err)
		var usage usageError
		if errors.As(err, &usage) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg + "\n" + usageText }

const usageText = `usage:
  flux-oracle pull REF DIR [--raw]
  flux-oracle push DIR REF --source S --revision R [--resolve-symlinks] [--created RFC3339]
  flux-oracle inspect REF
REF: HOST[:PORT]/REPO:TAG or oci-layout:PATH:TAG`

func run(args []string) error {
	if len(args) == 0 {
		return usageError{"missing subcommand"}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	positional, flags, err := parseArgs(args[1:])
	if err != nil {
		return err
	}
	switch args[0] {
	case "pull":
		if len(positional) != 2 {
			return usageError{"pull takes REF and DIR"}
		}
		report, err := pull(ctx, positional[0], positional[1], flags["raw"] == "true")
		if err != nil {
			return err
		}
		return printJSON(report)
	case "push":
		if len(positional) != 2 || flags["source"] == "" || flags["revision"] == "" {
			return usageError{"push takes DIR, REF, --source and --revision"}
		}
		report, err := push(ctx, positional[0], positional[1], pushFlags{
			source:          flags["source"],
			revision:        flags["revision"],
			created:         flags["created"],
			resolveSymlinks: flags["resolve-symlinks"] == "true",
		})
		if err != nil {
			return err
		}
		return printJSON(report)
	case "inspect":
		if len(positional) != 1 {
			return usageError{"inspect takes REF"}
		}
		report, err := inspect(ctx, positional[0])
		if err != nil {
			return err
		}
		return printJSON(report)
	default:
		return usageError{fmt.Sprintf("unknown subcommand %q", args[0])}
	}
}

// parseArgs splits `--name value`, `--name=value` and boolean `--raw` / `--resolve-symlinks`
// from positional arguments.
func parseArgs(args []string) ([]string, map[string]string, error) {
	booleans := map[string]bool{"raw": true, "resolve-symlinks": true}
	valued := map[string]bool{"source": true, "revision": true, "created": true}
	var positional []string
	flags := map[string]string{}
	for i := 0; i < len(args); i++ {
		arg := args[i]
		if !strings.HasPrefix(arg, "--") {
			positional = append(positional, arg)
			continue
		}
		name, value, hasValue := strings.Cut(strings.TrimPrefix(arg, "--"), "=")
		switch {
		case booleans[name]:
			flags[name] = "true"
		case valued[name] && hasValue:
			flags[name] = value
		case valued[name] && i+1 < len(args):
			i++
			flags[name] = args[i]
		default:
			return nil, nil, usageError{fmt.Sprintf("unknown or incomplete flag %q", arg)}
		}
	}
	return positional, flags, nil
}

func printJSON(v any) error {
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
