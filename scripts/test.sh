#!/usr/bin/env bash
# The whole test suite, from a fresh Debian machine: installs what the tests need (Debian's
# docker-registry, skopeo, apache2-utils for htpasswd, git, prometheus for promtool and chromium),
# starts two throwaway registries on loopback, runs every test of the workspace, and stops the
# registries.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v docker-registry >/dev/null || need+=(docker-registry)
command -v skopeo >/dev/null || need+=(skopeo)
command -v htpasswd >/dev/null || need+=(apache2-utils)
command -v git >/dev/null || need+=(git)
command -v promtool >/dev/null || need+=(prometheus)   # the guard's /metrics is checked with promtool
command -v chromium >/dev/null || need+=(chromium)     # the guard's status page is loaded headless
if [ ${#need[@]} -gt 0 ]; then
  echo "test.sh: installing ${need[*]}" >&2
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi

# Tests run against real registries and real git repositories; none of them skips.
exec scripts/with-registry.sh cargo test --workspace --locked "$@"
