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

# GitHub's published schemas judge the GitHub side (issue 16, docs/github-schemas.md): install
# them at the versions pinned in tests/github-schemas/package-lock.json and run the static checks;
# the Rust tests that need them (mainline-github's github_schemas, webhook_examples) run below.
if ! command -v npm >/dev/null || ! command -v node >/dev/null; then
  echo "test.sh: node and npm are required for the GitHub schema checks: install Node.js >= 20 and npm (apt-get install nodejs npm)" >&2
  exit 1
fi
(cd tests/github-schemas && npm ci --no-audit --no-fund --loglevel=error && npm test)

# Tests run against real registries and real git repositories; none of them skips.
scripts/with-registry.sh cargo test --workspace --locked --no-fail-fast "$@"

# The simulator at CI size (issue 5): 10,000 histories per strategy on the release build.
# mainline (with its lock) must show zero invariant violations; every baseline must show some.
cargo build --release --locked -q -p mainline
mkdir -p target
target/release/mainline simulate --histories 10000 --seed 1 -o json --plot target/simulate.svg > target/simulate.json
python3 - target/simulate.json <<'PY'
import json, sys
report = json.load(open(sys.argv[1]))
by = {s["name"]: s for s in report["strategies"]}
bad = []
if by["mainline"]["violations"] != 0 or by["mainline"]["merged_never_deployed"] != 0:
    bad.append("mainline must show no violations and lose no merged change")
for name in ["deploy-no-heal", "heal-on-failure", "heal-on-failure-or-cancel", "promote-after-merge"]:
    s = by[name]
    if s["violations"] == 0 and s["keeps_premerge_gate"]:
        bad.append(f"baseline {name} shows no failure")
for s in report["strategies"]:
    u, b = s["unmerged_minutes"], s["behind_minutes"]
    print(f"{s['name']:<26} violations {s['violations']:>7}  unmerged p50/p99/max {u['p50']}/{u['p99']}/{u['max']} min"
          f"  behind p50/p99/max {b['p50']}/{b['p99']}/{b['max']} min  never deployed {s['merged_never_deployed']}"
          f"  gate {'kept' if s['keeps_premerge_gate'] else 'LOST'}")
if bad:
    sys.exit("simulate check failed: " + "; ".join(bad))
print(f"simulate check: {report['histories']} histories per strategy; mainline 0 violations; every baseline fails")
PY
