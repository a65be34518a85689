//! Packing throughput: generates ~20,000 YAML files (~200 MiB) in a temp folder, packs it
//! once, and prints time, MiB/s and peak memory (which must not grow with the tree).
//!
//! `cargo bench -p mainline-pack --bench pack`; `MAINLINE_BENCH_FILES=N` changes the count.

use mainline_core::{CommitId, Revision};
use mainline_pack::{pack_dir, ArtifactMeta};
use std::fmt::Write as _;
use std::time::Instant;

const FILE_BYTES: usize = 10 * 1024;
const DIRS: usize = 200;

fn main() {
    let files: usize = std::env::var("MAINLINE_BENCH_FILES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let tmp = tempfile::tempdir().expect("temp dir for the bench tree");
    let root = tmp.path().join("tree");
    let started = Instant::now();
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    let mut body = String::with_capacity(FILE_BYTES + 256);
    for i in 0..files {
        let dir = root.join(format!("ns-{:03}/apps", i % DIRS));
        if i < DIRS {
            std::fs::create_dir_all(&dir).expect("create bench dir");
        }
        body.clear();
        let _ = write!(
            body,
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-{i}\ndata:\n"
        );
        while body.len() < FILE_BYTES {
            // xorshift: varied but reproducible values, so compression has real work to do.
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let _ = writeln!(body, "  key-{:x}: \"{:016x}\"", seed % 4096, seed);
        }
        std::fs::write(dir.join(format!("cm-{i:05}.yaml")), &body).expect("write bench file");
    }
    let generated = started.elapsed();
    let rss_before = peak_rss_kib();

    let commit: CommitId = "0123456789abcdef0123456789abcdef01234567"
        .parse()
        .expect("commit");
    let meta = ArtifactMeta::new(
        "https://github.com/example/bench",
        Revision::new(Some("main".to_owned()), commit),
        "2024-05-01T12:00:00Z",
    )
    .expect("bench metadata");
    let started = Instant::now();
    let packed = pack_dir(&root, &meta, tmp.path(), &mut |_| {}).expect("pack the bench tree");
    let took = started.elapsed();
    let mib = packed.content_bytes as f64 / (1024.0 * 1024.0);
    println!(
        "generated {files} files in {:.1}s; packed {} entries, {mib:.1} MiB -> {:.1} MiB layer in {:.2}s = {:.1} MiB/s",
        generated.as_secs_f64(),
        packed.entries,
        packed.layer.size as f64 / (1024.0 * 1024.0),
        took.as_secs_f64(),
        mib / took.as_secs_f64(),
    );
    println!(
        "peak RSS: {} KiB before packing, {} KiB after; manifest {}",
        rss_before.map_or("?".to_owned(), |k| k.to_string()),
        peak_rss_kib().map_or("?".to_owned(), |k| k.to_string()),
        packed.manifest_digest.short(),
    );
}

/// Peak resident set size (VmHWM) from /proc, where available.
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}
