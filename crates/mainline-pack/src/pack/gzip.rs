//! Deterministic parallel gzip: the layer's tar stream is cut into blocks of exactly [`BLOCK`]
//! bytes (the last one may be shorter), and each block is compressed on its own into a
//! complete gzip member. RFC 1952 (§2.2) defines a gzip file as a series of members; `gzip
//! -d`, GNU tar and Go's `compress/gzip` (so Flux's source-controller) read them as one
//! stream. A member depends only on the bytes of its block, so the layer — and its digest —
//! is a function of the tar stream alone: the same with 1 thread or 16, on any machine.
//!
//! A member is one call of libdeflate (the `libdeflater` crate, which builds the bundled C
//! library; its version is pinned exactly in `Cargo.toml`) on the whole block at level
//! [`LEVEL`]: libdeflate's output is a function of its input, level and version — not of the
//! CPU's vector extensions, which only speed up checksums and table set-up. Per core it
//! deflates this crate's YAML bench at about 2.8× the speed of GNU `gzip -6` and 1.5× that of
//! zlib-rs at the same level, with output 3% smaller (packing format 2; format 1 was zlib-rs
//! fed 64 KiB pieces, see the README's Performance section for the figures).
//!
//! Must never: let a block boundary or a member's bytes depend on the thread count, timing or
//! how sources were read; hold more than [`DEPTH`] × `threads` blocks in flight (memory stays
//! bounded);
//! write members out of order; change the compressor, its version or level without bumping
//! [`super::PACK_FORMAT`].

use libdeflater::{CompressionLvl, Compressor};
use std::collections::VecDeque;
use std::io::{self, Write};
use std::num::NonZeroUsize;
use std::thread::JoinHandle;

/// Uncompressed bytes per gzip member (the last member may hold fewer). Part of the format:
/// changing it changes the digest of every layer larger than one block.
pub(crate) const BLOCK: usize = 1024 * 1024;
/// gzip level 6, zlib's default (and `gzip`'s); part of the format.
const LEVEL: i32 = 6;
/// Blocks in flight per compression thread. With one per thread, a block that was slow to
/// compress (or a thread the OS descheduled) stalled the walker, which waits for the oldest
/// block, while the other threads ran dry; two keep the walker ahead. Never changes the bytes.
const DEPTH: usize = 2;
/// Compression threads when none are asked for: the machine's parallelism, at most this many
/// (each in-flight block holds about 2 MiB, plus the compressor's ~0.5 MiB of tables: at most
/// 16 blocks, about 40 MiB).
const MAX_AUTO_THREADS: usize = 8;

/// The default thread count: available parallelism, capped at [`MAX_AUTO_THREADS`].
pub(crate) fn auto_threads() -> NonZeroUsize {
    let cpus = std::thread::available_parallelism().map_or(1, NonZeroUsize::get);
    NonZeroUsize::new(cpus.min(MAX_AUTO_THREADS)).unwrap_or(NonZeroUsize::MIN)
}

/// A member being compressed on its own thread; it hands back its compressor for reuse.
type InFlight = JoinHandle<(io::Result<Vec<u8>>, Compressor)>;

/// A writer that gzips what it is given into `out` as a series of independent members, one
/// per [`BLOCK`], compressing up to [`DEPTH`] × `threads` blocks at once. Call [`Self::finish`]: dropping
/// it loses the tail.
pub(crate) struct ParallelGz<W: Write> {
    out: W,
    block: Vec<u8>,
    threads: usize,
    /// Blocks being compressed, oldest first; written to `out` in this order.
    in_flight: VecDeque<InFlight>,
    /// Compressors not in use (their tables are reset by every call, so reuse changes nothing).
    idle: Vec<Compressor>,
    members: u64,
}

impl<W: Write> ParallelGz<W> {
    pub fn new(out: W, threads: NonZeroUsize) -> Self {
        ParallelGz {
            out,
            block: Vec::with_capacity(BLOCK),
            threads: threads.get(),
            in_flight: VecDeque::new(),
            idle: Vec::new(),
            members: 0,
        }
    }

    /// Compresses the last (partial) block, waits for every member, writes them, and returns
    /// the inner writer. An empty input still gives one (empty) member: valid gzip.
    pub fn finish(mut self) -> io::Result<W> {
        if !self.block.is_empty() || self.members == 0 {
            self.dispatch()?;
        }
        while !self.in_flight.is_empty() {
            self.write_oldest()?;
        }
        Ok(self.out)
    }

    /// Hands the current block to a compressor: inline with one thread, else on a thread of
    /// its own once fewer than [`DEPTH`] × `threads` are in flight.
    fn dispatch(&mut self) -> io::Result<()> {
        self.members += 1;
        if self.threads <= 1 {
            let mut compressor = self.idle.pop().unwrap_or_else(compressor);
            let member = member(&mut compressor, &self.block);
            self.idle.push(compressor);
            self.block.clear();
            return self.out.write_all(&member?);
        }
        while self.in_flight.len() >= DEPTH * self.threads {
            self.write_oldest()?;
        }
        let block = std::mem::replace(&mut self.block, Vec::with_capacity(BLOCK));
        let mut compressor = self.idle.pop().unwrap_or_else(compressor);
        self.in_flight.push_back(std::thread::spawn(move || {
            let member = member(&mut compressor, &block);
            (member, compressor)
        }));
        Ok(())
    }

    fn write_oldest(&mut self) -> io::Result<()> {
        let Some(handle) = self.in_flight.pop_front() else {
            return Ok(());
        };
        let (member, compressor) = handle
            .join()
            .map_err(|_| io::Error::other("a gzip compression thread panicked"))?;
        self.idle.push(compressor);
        self.out.write_all(&member?)
    }
}

impl<W: Write> Write for ParallelGz<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let take = data.len().min(BLOCK - self.block.len());
        self.block.extend_from_slice(&data[..take]);
        if self.block.len() == BLOCK {
            self.dispatch()?;
        }
        Ok(take)
    }

    /// Does nothing: a member ends only at a block boundary or at [`Self::finish`].
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn compressor() -> Compressor {
    Compressor::new(CompressionLvl::new(LEVEL).expect("gzip level 6 is within libdeflate's 0..=12"))
}

/// One complete gzip member of `block`, compressed whole: mtime 0, no file name, level
/// [`LEVEL`] (libdeflate's gzip header: no flags, OS "unknown").
fn member(compressor: &mut Compressor, block: &[u8]) -> io::Result<Vec<u8>> {
    let mut out = vec![0; compressor.gzip_compress_bound(block.len())];
    let len = compressor
        .gzip_compress(block, &mut out)
        .map_err(|e| io::Error::other(format!("gzip compression failed: {e}")))?;
    out.truncate(len);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn gz(data: &[u8], threads: usize, write_size: usize) -> Vec<u8> {
        let threads = NonZeroUsize::new(threads).expect("threads > 0");
        let mut w = ParallelGz::new(Vec::new(), threads);
        for piece in data.chunks(write_size.max(1)) {
            w.write_all(piece).expect("write");
        }
        w.finish().expect("finish")
    }

    fn sample(len: usize) -> Vec<u8> {
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        (0..len)
            .map(|i| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                if i % 3 == 0 {
                    b'a' + (seed % 26) as u8
                } else {
                    b"key: value\n"[i % 11]
                }
            })
            .collect()
    }

    #[test]
    fn bytes_depend_on_the_input_alone() {
        let data = sample(3 * BLOCK + 12_345);
        let one = gz(&data, 1, 4096);
        assert_eq!(gz(&data, 16, 4096), one, "16 threads vs 1");
        assert_eq!(gz(&data, 2, 777_777), one, "other write sizes");
        assert_eq!(gz(&data, 3, data.len()), one, "one big write");
        let mut back = Vec::new();
        flate2::read::MultiGzDecoder::new(&one[..])
            .read_to_end(&mut back)
            .expect("decode members");
        assert_eq!(back, data);
    }

    #[test]
    fn one_member_per_block_and_one_for_empty_input() {
        let count = |bytes: &[u8]| bytes.windows(3).filter(|w| w == &[0x1f, 0x8b, 8]).count();
        let data = vec![0_u8; 2 * BLOCK + 1];
        // Zeros compress to a few bytes, so the magic appears only at member starts.
        assert_eq!(count(&gz(&data, 4, 65_536)), 3);
        assert_eq!(count(&gz(&data[..BLOCK], 4, 65_536)), 1);
        let empty = gz(&[], 4, 1);
        assert_eq!(count(&empty), 1);
        let mut back = Vec::new();
        flate2::read::MultiGzDecoder::new(&empty[..])
            .read_to_end(&mut back)
            .expect("decode empty");
        assert!(back.is_empty());
    }
}
