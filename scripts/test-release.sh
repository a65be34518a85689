#!/usr/bin/env bash
# Issue 20's checks, run by scripts/test.sh: the static musl release binary, `--version`, the
# tour in an empty environment and in a minimal root, the Action's download-and-verify script
# against a local HTTP server, the time from job start to a finished reconcile with the cached
# binary, and actionlint on every workflow we ship.
#
# Needs (scripts/test.sh installs them): rustup's x86_64-unknown-linux-musl target, musl-gcc
# (musl-tools), git, file, curl, python3, unshare (util-linux), and actionlint at
# $ACTIONLINT. A missing tool fails with how to get it; nothing is skipped.
set -euo pipefail
cd "$(dirname "$0")/.."

out=${CARGO_TARGET_DIR:-target}
case $out in /*) ;; *) out=$PWD/$out ;; esac
target=x86_64-unknown-linux-musl
passed=0
ok() { passed=$((passed + 1)); echo "ok: $*"; }
fail() { echo "FAIL: $*" >&2; echo "release checks: $passed passed, 1 failed"; exit 1; }
need() { command -v "$1" >/dev/null || fail "$1 is missing: $2"; }
need musl-gcc "apt-get install musl-tools"
need file "apt-get install file"
need readelf "apt-get install binutils"
need curl "apt-get install curl"
need python3 "apt-get install python3"
need unshare "apt-get install util-linux"
need git "apt-get install git"
need shellcheck "apt-get install shellcheck"
ACTIONLINT=${ACTIONLINT:-$out/actionlint/actionlint}
[ -x "$ACTIONLINT" ] || fail "actionlint not at $ACTIONLINT: go install github.com/rhysd/actionlint/cmd/actionlint@v1.7.12 (scripts/test.sh does)"

work=$(mktemp -d)
server=
cleanup() { [ -n "$server" ] && kill "$server" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

# 1. The static binary. One release build for the musl target (its cold time is in the report).
start=$(date +%s)
env -u SOURCE_DATE_EPOCH -u MAINLINE_BUILD_COMMIT cargo build --release --locked -q -p mainline --target "$target"
echo "musl release build: $(($(date +%s) - start)) s"
bin=$out/$target/release/mainline
desc=$(LC_ALL=C file -L "$bin")
echo "$desc"
grep -Eq 'static(-pie)? linked' <<<"$desc" || fail "$bin is not statically linked: $desc"
ldd_out=$(LC_ALL=C ldd "$bin" 2>&1 || true)
echo "ldd: $ldd_out"
# ldd says "not a dynamic executable" for a static non-PIE binary and "statically linked" for a
# static-pie one (Rust's musl default, kept for ASLR); either way no program interpreter.
grep -Eq 'not a dynamic executable|statically linked' <<<"$ldd_out" || fail "ldd sees shared libraries: $ldd_out"
if grep -q INTERP <<<"$(LC_ALL=C readelf -l "$bin")"; then fail "$bin asks for a program interpreter"; fi
if grep -q NEEDED <<<"$(LC_ALL=C readelf -d "$bin")"; then fail "$bin needs shared libraries: $(readelf -d "$bin" | grep NEEDED)"; fi
ok "static binary, no interpreter, no NEEDED: $(stat -c %s "$bin") bytes ($(strip -o "$work/stripped" "$bin" && stat -c %s "$work/stripped") stripped)"

# 2. --version: version, the commit and its date (UTC), from git, not the clock.
commit=$(git rev-parse HEAD)
day=$(TZ=UTC git log -1 --date=format-local:%Y-%m-%d --format=%cd HEAD)
want="mainline $(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1) (commit $commit, built $day)"
got=$("$bin" --version)
[ "$got" = "$want" ] || fail "--version says '$got', expected '$want'"
ok "--version: $got"
# The same build script outside any git repository (a source tarball): "unknown", and
# SOURCE_DATE_EPOCH gives the date when a packager sets it.
mkdir -p "$work/tarball/crates/mainline"
cp crates/mainline/build.rs "$work/tarball/crates/mainline/"
CARGO_MANIFEST_DIR=$work/tarball/crates/mainline CARGO_PKG_VERSION=9.9.9 \
  rustc --edition 2021 -o "$work/tarball/stamp" "$work/tarball/crates/mainline/build.rs"
line=$(cd / && env -u SOURCE_DATE_EPOCH -u MAINLINE_BUILD_COMMIT "$work/tarball/stamp" | grep rustc-env=MAINLINE_VERSION_LINE)
[ "$line" = "cargo:rustc-env=MAINLINE_VERSION_LINE=9.9.9 (commit unknown, built unknown)" ] || fail "outside git: $line"
line=$(env -u MAINLINE_BUILD_COMMIT SOURCE_DATE_EPOCH=1700000000 "$work/tarball/stamp" | grep rustc-env=MAINLINE_VERSION_LINE)
[ "$line" = "cargo:rustc-env=MAINLINE_VERSION_LINE=9.9.9 (commit unknown, built 2023-11-14)" ] || fail "SOURCE_DATE_EPOCH: $line"
ok "--version outside git says unknown; SOURCE_DATE_EPOCH sets the date"

# 3. The tour in an empty environment: no PATH, no HOME (git is found at the default path).
tour=$(env -i "$bin" tour 2>&1) || fail "env -i mainline tour failed: $tour"
grep -q "verdict   DIVERGED" <<<"$tour" || fail "tour shows no DIVERGED: $tour"
grep -q "chain verified: 8 records" <<<"$tour" || fail "tour journal not verified: $tour"
ok "env -i mainline tour (no PATH, no HOME)"

# 4. The tour in a minimal root: the image's root (deploy/rootfs.sh: mainline, git, its libs),
# plus what git's local-path transport runs (sh, git-upload-pack, git-receive-pack: the tour's
# remote is a directory; the image's https remotes need none of them), in a user namespace.
gitcore=$(git --exec-path)
deploy/rootfs.sh "$work/root" "$bin" /bin/sh "$gitcore/git-upload-pack" "$gitcore/git-receive-pack"
[ -e "$work/root/bin/sh" ] || fail "rootfs.sh did not copy /bin/sh"
echo "minimal root: $(find "$work/root" -type f | wc -l) files, $(du -sh "$work/root" | cut -f1)"
# git needs /dev/null and /dev/urandom (a container runtime provides /dev): bound in from here.
touch "$work/root/dev/null" "$work/root/dev/urandom"
# shellcheck disable=SC2016 # expanded by the inner shell
tour=$(unshare -r -m sh -c 'mount --bind /dev/null "$1/dev/null" && mount --bind /dev/urandom "$1/dev/urandom" &&
  exec chroot "$1" /usr/local/bin/mainline tour' sh "$work/root" 2>&1) ||
  fail "the tour in a minimal root failed (does this kernel allow user namespaces?): $tour"
grep -q "verdict   CONVERGED" <<<"$tour" || fail "tour in the minimal root did not converge: $tour"
ok "mainline tour in a minimal root (chroot in a user namespace)"

# 5. The Action's install script against a local release server.
rel=$work/releases
mkdir -p "$rel/v0.0.1" "$rel/v0.0.2" "$rel/v0.0.3"
asset=mainline-$target
for v in v0.0.1 v0.0.2 v0.0.3; do cp "$bin" "$rel/$v/$asset"; done
(cd "$rel/v0.0.1" && sha256sum "$asset" > SHA256SUMS)
printf '%064d  %s\n' 0 "$asset" > "$rel/v0.0.2/SHA256SUMS"                          # wrong sum
sha256sum "$rel/v0.0.1/$asset" | sed 's#  .*#  mainline-aarch64-unknown-linux-musl#' > "$rel/v0.0.3/SHA256SUMS" # no entry
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
python3 -m http.server --bind 127.0.0.1 --directory "$rel" "$port" > "$work/http.log" 2>&1 &
server=$!
for _ in $(seq 50); do curl -fs "http://127.0.0.1:$port/" >/dev/null && break; sleep 0.1; done
install() { # version dir
  env -u GITHUB_PATH GITHUB_OUTPUT="$work/out" RUNNER_OS=Linux RUNNER_ARCH=X64 MAINLINE_VERSION="$1" \
    MAINLINE_INSTALL_DIR="$2" MAINLINE_RELEASE_URL="http://127.0.0.1:$port" scripts/action-install.sh
}
set +e
msg=$(install v0.0.2 "$work/cache/v0.0.2" 2>&1); code=$?
set -e
[ $code = 1 ] && grep -q "checksum mismatch" <<<"$msg" || fail "a checksum mismatch was not refused (exit $code): $msg"
[ ! -e "$work/cache/v0.0.2/mainline" ] || fail "a mismatching binary was left installed"
[ -z "$(ls -A "$work/cache/v0.0.2")" ] || fail "a refused download left files: $(ls -A "$work/cache/v0.0.2")"
ok "checksum mismatch refused, nothing installed: $msg"
set +e
msg=$(install v0.0.3 "$work/cache/v0.0.3" 2>&1); code=$?
set -e
[ $code = 1 ] && grep -q "lists no SHA-256" <<<"$msg" || fail "sums without our asset were not refused (exit $code): $msg"
ok "sums that do not list the asset refused"
for bad in "latest" "v1" "v0.0.1;rm"; do
  set +e; msg=$(install "$bad" "$work/cache/x" 2>&1); code=$?; set -e
  [ $code = 2 ] || fail "version '$bad' was not refused as bad input (exit $code): $msg"
done
set +e
msg=$(MAINLINE_RELEASE_URL=http://example.com env GITHUB_OUTPUT=/dev/null MAINLINE_VERSION=v0.0.1 MAINLINE_INSTALL_DIR="$work/cache/y" scripts/action-install.sh 2>&1); code=$?
set -e
[ $code = 2 ] || fail "plain http off loopback was not refused (exit $code): $msg"
ok "bad versions and plain-http mirrors refused (exit 2)"
: > "$work/out"
msg=$(install v0.0.1 "$work/cache/v0.0.1") || fail "install v0.0.1: $msg"
grep -qx "cache-hit=false" "$work/out" || fail "first install is not a miss: $(cat "$work/out")"
grep -q "commit $commit" <<<"$("$work/cache/v0.0.1/mainline" --version)" || fail "the installed binary is not ours"
gets=$(grep -c '"GET /v0.0.1/' "$work/http.log")
ok "download verified and installed ($gets requests): $msg"

# A cache hit skips the download: the server is stopped, so any request would fail.
kill "$server"; wait "$server" 2>/dev/null || true; server=
: > "$work/out"
msg=$(install v0.0.1 "$work/cache/v0.0.1") || fail "cache hit with the server down: $msg"
grep -qx "cache-hit=true" "$work/out" || fail "second install is not a cache hit: $(cat "$work/out")"
ok "cache hit with the server stopped: $msg"
# A tampered cache is not a hit: it is removed and downloaded again (here: fails, server down).
printf 'x' >> "$work/cache/v0.0.1/mainline"
set +e; msg=$(install v0.0.1 "$work/cache/v0.0.1" 2>&1); code=$?; set -e
[ $code = 1 ] && [ ! -e "$work/cache/v0.0.1/mainline" ] || fail "a tampered cached binary was used or kept (exit $code): $msg"
ok "tampered cached binary removed, not run"

# 6. Job start to a finished reconcile with the cached binary: install (cache hit) + reconcile,
# through the Action's own scripts, on the tour's store and git remote.
cp "$bin" "$work/cache/v0.0.1/mainline" && cp "$rel/v0.0.1/SHA256SUMS" "$work/cache/v0.0.1/" # as actions/cache restores it
env -i "$bin" tour --keep "$work/shop" > /dev/null
: > "$work/out"
t0=$(date +%s%N)
install v0.0.1 "$work/cache/v0.0.1" > /dev/null
env -i HOME="$work" GITHUB_OUTPUT="$work/out" MAINLINE_BIN="$work/cache/v0.0.1/mainline" \
  INPUT_COMMAND=reconcile INPUT_CHANNEL="oci-layout:$work/shop/store:latest" \
  INPUT_GIT="$work/shop/remote.git" INPUT_PATH=k8s MAINLINE_CACHE_DIR="$work/shop/cache" \
  /bin/bash scripts/action-run.sh > "$work/reconcile.txt" 2>&1 || fail "reconcile through action-run.sh: $(cat "$work/reconcile.txt")"
t1=$(date +%s%N)
grep -qx "exit-code=0" "$work/out" || fail "action-run.sh wrote no exit-code=0: $(cat "$work/out")"
echo "job start -> reconcile finished, cached binary: $(((t1 - t0) / 1000000)) ms"
ok "reconcile through the Action's scripts: $(grep -m1 verdict "$work/reconcile.txt" || head -1 "$work/reconcile.txt")"
# Its exit code passes through: a bad channel is invalid input (2), recorded as the output.
: > "$work/out"
set +e
GITHUB_OUTPUT="$work/out" MAINLINE_BIN="$bin" INPUT_COMMAND=status INPUT_CHANNEL="oci-layout:$work/none:latest" \
  INPUT_GIT="$work/shop/remote.git" INPUT_PATH=k8s scripts/action-run.sh > /dev/null 2>&1; code=$?
set -e
[ $code = 2 ] && grep -qx "exit-code=2" "$work/out" || fail "action-run.sh did not pass exit code 2 through (got $code)"
set +e; GITHUB_OUTPUT=/dev/null INPUT_COMMAND='  ' scripts/action-run.sh > /dev/null 2>&1; code=$?; set -e
[ $code = 2 ] || fail "an empty command was not refused (exit $code)"
ok "action-run.sh passes mainline's exit code through and refuses an empty command"

# 7. shellcheck on the scripts users run (the Action's, the image's), then actionlint on every
# workflow we ship (it runs shellcheck on their `run:` blocks too).
shellcheck -S warning scripts/action-install.sh scripts/action-run.sh deploy/rootfs.sh scripts/test-release.sh ||
  fail "shellcheck found problems"
ok "shellcheck clean"
# actionlint on every workflow we ship (action.yml is checked through action-check.yml,
# which uses it as a local action).
"$ACTIONLINT" -no-color .github/workflows/*.yml docs/github-actions/*.yml docs/simulate-baselines/*.yml ||
  fail "actionlint found problems"
yamls=(.github/workflows/*.yml docs/github-actions/*.yml docs/simulate-baselines/*.yml)
ok "actionlint clean: ${#yamls[@]} workflows + action.yml"

echo "release checks: $passed passed, 0 failed"
