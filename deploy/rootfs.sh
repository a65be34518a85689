#!/usr/bin/env bash
# Assembles the image's root filesystem in ROOT: the static mainline binary, git (mainline's
# transport to the source remote) with exactly the shared libraries `ldd` says it and its https
# helper need, CA certificates, and passwd/group entries for the non-root user 65532. No shell,
# no package manager: deploy/Containerfile copies ROOT onto `scratch`.
#
# Why a script: the same root is what scripts/test-release.sh runs the tour in (under unshare +
# chroot, adding /bin/sh there only because git's local-path transport, which the offline tour
# uses, runs `git-upload-pack` through sh; https remotes, what the guard uses, do not).
#
# Usage: deploy/rootfs.sh ROOT MAINLINE_BINARY [EXTRA_PROGRAM...]
# Must never: copy a dynamically linked mainline (it must be the static musl build), or leave a
# half-built ROOT looking complete (it refuses a ROOT that already exists).
set -euo pipefail

[ $# -ge 2 ] || { echo "usage: deploy/rootfs.sh ROOT MAINLINE_BINARY [EXTRA_PROGRAM...]" >&2; exit 2; }
root=$1
bin=$2
shift 2
[ -e "$root" ] && { echo "rootfs.sh: $root already exists: give a new directory" >&2; exit 2; }
[ -x "$bin" ] || { echo "rootfs.sh: $bin is not an executable mainline binary" >&2; exit 2; }
if ! LC_ALL=C file -L "$bin" | grep -Eq 'static(-pie)? linked'; then
  echo "rootfs.sh: $bin is not statically linked: build it with --target x86_64-unknown-linux-musl" >&2
  exit 2
fi
git=$(command -v git) || { echo "rootfs.sh: git is needed (apt-get install git)" >&2; exit 2; }
exec_path=$(git --exec-path)

mkdir -p "$root"
# Everything the programs need, at the same paths as on this system (the loader included).
copy() { cp -L --parents "$1" "$root/"; }
libs() { ldd "$1" 2>/dev/null | awk '/=> \// { print $3 } /^\t\// { print $1 }'; }
progs=("$git" "$exec_path/git-remote-http" "$exec_path/git-remote-https" "$@")
for p in "${progs[@]}"; do
  copy "$p"
  for lib in $(libs "$p"); do copy "$lib"; done
done
install -D -m 0755 "$bin" "$root/usr/local/bin/mainline"
if [ -f /etc/ssl/certs/ca-certificates.crt ]; then copy /etc/ssl/certs/ca-certificates.crt; fi
mkdir -p "$root/etc" "$root/dev" "$root/var/lib/mainline" "$root/var/cache/mainline"
mkdir -p "$root/tmp" && chmod 1777 "$root/tmp"
printf 'root:x:0:0:root:/root:/sbin/nologin\nmainline:x:65532:65532:mainline:/var/lib/mainline:/sbin/nologin\n' > "$root/etc/passwd"
printf 'root:x:0:\nmainline:x:65532:\n' > "$root/etc/group"
