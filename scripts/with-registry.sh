#!/usr/bin/env bash
# Run a command with two throwaway OCI registries (Debian's docker-registry) on loopback:
#   MAINLINE_TEST_REGISTRY       host:port of an open registry (no auth)
#   MAINLINE_TEST_REGISTRY_AUTH  host:port of a registry that wants basic auth
#   MAINLINE_TEST_REGISTRY_USER / MAINLINE_TEST_REGISTRY_PASSWORD  its credentials
#   MAINLINE_TEST_REGISTRY_LOG   the open registry's log (one line per HTTP request)
# Both registries and their storage are removed when the command ends.
# Usage: scripts/with-registry.sh cargo test --workspace
set -euo pipefail

for tool in docker-registry htpasswd python3; do
  if ! command -v "$tool" >/dev/null; then
    echo "with-registry: '$tool' is missing. Run scripts/test.sh (it installs docker-registry, apache2-utils and skopeo), or: apt-get install -y docker-registry apache2-utils skopeo" >&2
    exit 2
  fi
done

work=$(mktemp -d "${TMPDIR:-/tmp}/mainline-registry.XXXXXX")
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }

start_registry() { # name port auth_block
  local name=$1 port=$2 auth=$3
  mkdir -p "$work/$name/data"
  cat >"$work/$name/config.yml" <<YAML
version: 0.1
log:
  level: info
  accesslog:
    disabled: false
storage:
  filesystem:
    rootdirectory: $work/$name/data
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: 127.0.0.1:$port
$auth
YAML
  docker-registry serve "$work/$name/config.yml" >"$work/$name/log" 2>&1 &
  pids+=($!)
  for _ in $(seq 1 100); do
    if python3 - "$port" <<'PY' 2>/dev/null; then return 0; fi
import sys, urllib.request, urllib.error
try:
    urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/v2/", timeout=0.5)
except urllib.error.HTTPError:
    pass  # 401 from the auth registry still means it is up
PY
    sleep 0.1
  done
  echo "with-registry: docker-registry '$name' did not answer on 127.0.0.1:$port; its log:" >&2
  cat "$work/$name/log" >&2
  exit 2
}

open_port=$(free_port)
start_registry open "$open_port" ""
auth_port=$(free_port)
htpasswd -Bbn mainline test-secret-not-real >"$work/htpasswd"
start_registry auth "$auth_port" "auth:
  htpasswd:
    realm: mainline-test
    path: $work/htpasswd"

export MAINLINE_TEST_REGISTRY="127.0.0.1:$open_port"
export MAINLINE_TEST_REGISTRY_LOG="$work/open/log"
export MAINLINE_TEST_REGISTRY_AUTH="127.0.0.1:$auth_port"
export MAINLINE_TEST_REGISTRY_USER=mainline
export MAINLINE_TEST_REGISTRY_PASSWORD=test-secret-not-real
echo "with-registry: open registry on $MAINLINE_TEST_REGISTRY, basic-auth registry on $MAINLINE_TEST_REGISTRY_AUTH" >&2
"$@"
