//! Deterministic parallel gzip: the layer's tar stream is cut into blocks of exactly [`BLOCK`]
//! bytes (the last one may be shorter), and each block is compressed on its own into a
//! complete gzip member. RFC 1952 (§2.2) defines a gzip file as a series of members; `gzip
//! -d`, GNU tar and Go's `compress/gzip` (so Flux's source-controller) read them as one
//! stream. A member depends only on the bytes of its block, so the layer — and its digest —
//! is a function of the tar stream alone: the same with 1 thread or 16, on any machine.
//!
//! Inside a member the compressor is fed [`CHUNK`]-sized pieces, exactly as the single-stream
//! writer before it was; a tar stream of at most one block (most deploy trees) therefore
//! packs to the same bytes, and the same digest, as that earlier format.
//!
//! Must never: let a block boundary or a member's bytes depend on the thread count, timing or
//! how sources were read; hold more than `threads` blocks in flight (memory stays bounded);
//! write members out of order; flush a compressor mid-member (a sync flush changes the bytes).

use flate2::{Compression, GzBuilder};
use std::collections::VecDeque;
use std::io::{self, Write};
use std::num::NonZeroUsize;
use std::thread::JoinHandle;

/// Uncompressed bytes per gzip member (the last member may hold fewer). Part of the format:
/// changing it changes the digest of every layer larger than one block.
pub(crate) const BLOCK: usize = 1024 * 1024;
/// Bytes handed to the compressor per call within a member (except a member's last piece).
/// Also part of the format. [`BLOCK`] is a multiple of it.
const CHUNK: usize = 64 * 1024;
/// gzip level 6, zlib's default.
const LEVEL: u32 = 6;
/// Compression threads when none are asked for: the machine's parallelism, at most this many
/// (each in-flight block holds about 2 MiB).
const MAX_AUTO_THREADS: usize = 8;

/// The default thread count: available parallelism, capped at [`MAX_AUTO_THREADS`].
pub(crate) fn auto_threads() -> NonZeroUsize {
    let cpus = std::thread::available_parallelism().map_or(1, NonZeroUsize::get);
    NonZeroUsize::new(cpus.min(MAX_AUTO_THREADS)).unwrap_or(NonZeroUsize::MIN)
}

/// A writer that gzips what it is given into `out` as a series of independent members, one
/// per [`BLOCK`], compressing up to `threads` blocks at once. Call [`Self::finish`]: dropping
/// it loses the tail.
pub(crate) struct ParallelGz<W: Write> {
    out: W,
    block: Vec<u8>,
    threads: usize,
    /// Blocks being compressed, oldest first; written to `out` in this order.
    in_flight: VecDeque<JoinHandle<io::Result<Vec<u8>>>>,
    members: u64,
}

impl<W: Write> ParallelGz<W> {
    pub fn new(out: W, threads: NonZeroUsize) -> Self {
        ParallelGz {
            out,
            block: Vec::with_capacity(BLOCK),
            threads: threads.get(),
            in_flight: VecDeque::new(),
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
    /// its own once fewer than `threads` are in flight.
    fn dispatch(&mut self) -> io::Result<()> {
        let block = std::mem::replace(&mut self.block, Vec::with_capacity(BLOCK));
        self.members += 1;
        if self.threads <= 1 {
            let member = member(&block)?;
            return self.out.write_all(&member);
        }
        while self.in_flight.len() >= self.threads {
            self.write_oldest()?;
        }
        self.in_flight
            .push_back(std::thread::spawn(move || member(&block)));
        Ok(())
    }

    fn write_oldest(&mut self) -> io::Result<()> {
        let Some(handle) = self.in_flight.pop_front() else {
            return Ok(());
        };
        let member = handle
            .join()
            .map_err(|_| io::Error::other("a gzip compression thread panicked"))??;
        self.out.write_all(&member)
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

/// One complete gzip member of `block`: mtime 0, no file name, level [`LEVEL`], the input fed
/// in [`CHUNK`]-sized pieces.
fn member(block: &[u8]) -> io::Result<Vec<u8>> {
    let out = Vec::with_capacity(block.len() / 2 + 64);
    let mut gz = GzBuilder::new()
        .mtime(0)
        .write(out, Compression::new(LEVEL));
    for piece in block.chunks(CHUNK) {
        gz.write_all(piece)?;
    }
    gz.finish()
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
