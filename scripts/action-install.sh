#!/usr/bin/env bash
# Installs a released mainline binary for the GitHub Action (action.yml), or anywhere else.
#
# Why: a CI job that heals prod must not spend minutes compiling mainline first (issue 20). This
# downloads the static release binary for this machine's OS/arch, checks its SHA-256 against the
# release's SHA256SUMS and installs it into MAINLINE_INSTALL_DIR, the directory the Action caches
# with actions/cache keyed by version. A directory that already holds a binary matching its sums
# (a cache hit) is used as is: nothing is downloaded.
#
# Must never: install or leave behind a binary whose SHA-256 does not match the sums (a
# mismatch exits 1 and removes the download), fetch over plain http from anything but loopback,
# or skip TLS verification.
#
# Inputs (environment):
#   MAINLINE_VERSION      the release tag, e.g. v0.1.0 (required)
#   MAINLINE_INSTALL_DIR  where the binary and its SHA256SUMS go (required; the cached path)
#   MAINLINE_RELEASE_URL  base of the release downloads
#                         (default https://github.com/mainline-dev/mainline/releases/download)
#   RUNNER_OS, RUNNER_ARCH  as GitHub sets them (Linux; X64 or ARM64); default: uname
# Outputs: `path=DIR` and `cache-hit=true|false` appended to $GITHUB_OUTPUT when set; DIR
# appended to $GITHUB_PATH when set. Exit 0 installed, 1 checksum mismatch or download failed,
# 2 bad input.
#
# The release assets (a contract with .github/workflows/release.yml, docs/release.md):
#   mainline-x86_64-unknown-linux-musl, mainline-aarch64-unknown-linux-musl, SHA256SUMS
set -euo pipefail

die() { # code message
  echo "mainline install: $2" >&2
  exit "$1"
}

version=${MAINLINE_VERSION:-}
dir=${MAINLINE_INSTALL_DIR:-}
base=${MAINLINE_RELEASE_URL:-https://github.com/mainline-dev/mainline/releases/download}
base=${base%/}

[[ $version =~ ^v[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?$ ]] ||
  die 2 "MAINLINE_VERSION '${version}' is not a release tag like v0.1.0: set the Action's 'version' input (or pin the Action to a tag, uses: mainline-dev/mainline@v0.1.0)"
[ -n "$dir" ] || die 2 "MAINLINE_INSTALL_DIR is empty: give the directory to install into"
case $base in
  https://*) ;;
  http://127.0.0.1[:/]* | http://localhost[:/]* | http://\[::1\][:/]*) ;;
  *) die 2 "MAINLINE_RELEASE_URL '${base}' must be https:// (plain http only on loopback, for tests)" ;;
esac

os=${RUNNER_OS:-$(uname -s)}
arch=${RUNNER_ARCH:-$(uname -m)}
case $os in
  Linux | linux) ;;
  *) die 2 "no mainline release binary for ${os}: the releases ship static Linux binaries (x86_64, aarch64); on other systems use cargo install --locked mainline" ;;
esac
case $arch in
  X64 | x86_64 | amd64) target=x86_64-unknown-linux-musl ;;
  ARM64 | aarch64 | arm64) target=aarch64-unknown-linux-musl ;;
  *) die 2 "no mainline release binary for Linux ${arch}: the releases ship x86_64 and aarch64" ;;
esac
asset=mainline-$target

# The SHA-256 the sums file gives for the asset; empty when it names none.
expected() { awk -v a="$asset" '($2 == a || $2 == "*" a) && length($1) == 64 && $1 ~ /^[0-9a-f]+$/ { print $1; exit }' "$1"; }
actual() { sha256sum "$1" | awk '{ print $1 }'; }

publish() { # cache-hit
  if [ -n "${GITHUB_OUTPUT:-}" ]; then
    { echo "path=$dir"; echo "cache-hit=$1"; } >> "$GITHUB_OUTPUT"
  fi
  if [ -n "${GITHUB_PATH:-}" ]; then echo "$dir" >> "$GITHUB_PATH"; fi
}

if [ -f "$dir/mainline" ] && [ -f "$dir/SHA256SUMS" ]; then
  want=$(expected "$dir/SHA256SUMS")
  if [ -n "$want" ] && [ "$(actual "$dir/mainline")" = "$want" ]; then
    echo "mainline install: cache hit, $asset $version in $dir (sha256 $want), nothing downloaded"
    publish true
    exit 0
  fi
  echo "mainline install: the cached binary in $dir does not match its sums; removing it and downloading again" >&2
  rm -f "$dir/mainline" "$dir/SHA256SUMS"
fi

mkdir -p "$dir"
# A download a killed run left behind (SIGKILL skips the trap) is never used: remove it.
rm -rf "$dir"/.download.*
tmp=$(mktemp -d "$dir/.download.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
fetch() { # url file
  curl --fail --silent --show-error --location --retry 3 --connect-timeout 10 --max-time 120 \
    --proto '=https,http' -o "$2" "$1" ||
    die 1 "could not download $1: check that release $version exists and has $asset, then retry"
}
fetch "$base/$version/SHA256SUMS" "$tmp/SHA256SUMS"
want=$(expected "$tmp/SHA256SUMS")
[ -n "$want" ] || die 1 "$base/$version/SHA256SUMS lists no SHA-256 for $asset: refusing to install an unverified binary"
fetch "$base/$version/$asset" "$tmp/mainline"
got=$(actual "$tmp/mainline")
[ "$got" = "$want" ] ||
  die 1 "checksum mismatch for $asset $version: SHA256SUMS says $want, the download is $got; nothing was installed (a corrupted or tampered download: retry, and report it if it persists)"
chmod 0755 "$tmp/mainline"
# The binary first, the sums last: an interrupted install never looks like a cache hit.
rm -f "$dir/SHA256SUMS"
mv -f "$tmp/mainline" "$dir/mainline"
mv -f "$tmp/SHA256SUMS" "$dir/SHA256SUMS"
echo "mainline install: downloaded $asset $version into $dir (sha256 $want)"
publish false
