//! Go peers for the artifacts bench: `crane` (go-containerregistry's CLI, pinned to the same
//! version the Flux oracle uses) and `tests/flux-oracle` (whose `push` is `flux push
//! artifact`'s code). Built with the Go toolchain into the bench's target tmp dir; modules come
//! through the Go proxy and stay in GOMODCACHE.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The go-containerregistry version of tests/flux-oracle/go.mod.
const CRANE: &str = "github.com/google/go-containerregistry/cmd/crane@v0.22.1";

fn go() -> PathBuf {
    if Command::new("go")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        return PathBuf::from("go");
    }
    let local = PathBuf::from("/usr/local/go/bin/go");
    assert!(
        local.is_file(),
        "the artifacts bench runs crane and Flux's push as peers and needs Go 1.26+: install it \
         from https://go.dev/dl/ (tar -C /usr/local -xzf go1.26.*.linux-amd64.tar.gz)"
    );
    local
}

fn tools_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("go-tools")
}

/// `crane`, installed once with `go install` at the pinned version.
pub fn crane() -> PathBuf {
    let bin = tools_dir().join("crane");
    if !bin.is_file() {
        let status = Command::new(go())
            .args(["install", CRANE])
            .env("GOBIN", tools_dir())
            .env("GOFLAGS", "-p=2")
            .status()
            .expect("run go install");
        assert!(status.success(), "go install {CRANE} failed");
    }
    bin
}

/// The Flux oracle: `MAINLINE_FLUX_ORACLE` (scripts/test.sh builds it), else built here.
pub fn flux_oracle() -> PathBuf {
    if let Some(p) = std::env::var_os("MAINLINE_FLUX_ORACLE") {
        return PathBuf::from(p);
    }
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/flux-oracle");
    let bin = tools_dir().join("flux-oracle");
    let status = Command::new(go())
        .current_dir(&src)
        .args(["build", "-mod=readonly", "-o"])
        .arg(&bin)
        .arg(".")
        .env("GOFLAGS", "-p=2")
        .status()
        .expect("run go build");
    assert!(status.success(), "go build of {} failed", src.display());
    bin
}
