//! `SeriesRing`: the last N points of one series, held compactly in memory.
//!
//! 10,000 agents x 10 metrics x 1,000 points is 100 million points: at the 16 bytes of a plain
//! `(i64, f64)` that is 1.6 GB. Here points are encoded in the manner of Gorilla (Facebook's
//! in-memory time-series store, which Prometheus' chunks follow):
//! - the timestamp as a delta of deltas: one bit for a point on the usual beat, nine for a few
//!   milliseconds of jitter;
//! - a value with at most six decimal places (what most reported metrics are: counts,
//!   milliseconds, percents to two places) as its integer at that scale, sent as the
//!   difference from the last one in a width that is kept while it fits: exact, and the
//!   difference's own bits and three more for a gauge that moves a little every point (13
//!   for a percent to three places moving by a few tenths), where the XOR of the floats'
//!   bits costs 25 or more;
//! - any other value as an `f32` (seven significant digits, as Netdata's 32-bit storage
//!   numbers keep) XORed with the one before: only the bits that changed, placed by a window
//!   of leading and trailing zero bits that is reused while it fits;
//! - one bit for a value that repeats.
//!
//! The detectors, the alert rules, the latest readings and the minute rollups all see the full
//! `f64` before it is stored. The bits are in [`codec`].
//!
//! Points go into an open chunk; a full chunk is sealed into one exact-size allocation. The
//! oldest chunk is dropped once every point in it is beyond the capacity; until then a skip
//! count hides its oldest points, so the ring always answers exactly the last `capacity`.

use std::collections::VecDeque;

mod codec;
use codec::{BitReader, BitWriter, ValueState};

/// Points per chunk. Larger chunks cost less bookkeeping per point and hold more points past
/// the capacity until they can be dropped (on average half a chunk).
const CHUNK_POINTS: usize = 128;

/// The last points of one series, oldest first.
#[derive(Debug, Default)]
pub struct SeriesRing {
    /// Sealed chunks, oldest first.
    sealed: VecDeque<Sealed>,
    /// The chunk being filled.
    open: Open,
    /// Points of the oldest chunk already beyond the capacity.
    skip: u32,
    /// Points held, skipped ones included.
    held: u32,
}

/// A full chunk: the first timestamp, then one allocation holding the number of points and
/// their bits.
#[derive(Debug)]
struct Sealed {
    first_ts: i64,
    /// Number of points less one, then the encoded points.
    data: Box<[u8]>,
}

/// The chunk being filled.
#[derive(Debug, Default)]
struct Open {
    first_ts: i64,
    last_ts: i64,
    last_delta: i64,
    /// The newest value, and what the next one is coded against.
    value: ValueState,
    points: u32,
    bits: BitWriter,
}

// === impl SeriesRing ===

impl SeriesRing {
    /// Appends a point, then drops the oldest beyond `capacity` (at least one is kept).
    pub fn push(&mut self, ts_ms: i64, value: f64, capacity: usize) {
        if self.open.points as usize == CHUNK_POINTS {
            if self.sealed.capacity() == 0 {
                // Room for the chunks a full ring holds, and no more: a doubling deque would
                // give 16 slots where 9 are needed at the default 1,000 points.
                self.sealed
                    .reserve_exact(capacity.max(1).div_ceil(CHUNK_POINTS) + 1);
            }
            let full = std::mem::take(&mut self.open);
            self.sealed.push_back(full.seal());
        }
        self.open.push(ts_ms, value);
        self.held += 1;
        self.trim(capacity.max(1));
    }

    /// Number of points answered.
    pub fn len(&self) -> usize {
        (self.held - self.skip) as usize
    }

    /// Whether no point is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The newest point.
    pub fn last(&self) -> Option<(i64, f64)> {
        if self.open.points == 0 {
            return None;
        }
        Some((self.open.last_ts, self.open.value.last))
    }

    /// Every point, oldest first.
    pub fn points(&self) -> Vec<(i64, f64)> {
        let mut out = Vec::with_capacity(self.len());
        for chunk in &self.sealed {
            decode(chunk.first_ts, chunk.len(), &chunk.data[1..], &mut out);
        }
        let open = &self.open;
        decode(
            open.first_ts,
            open.points as usize,
            &open.bits.bytes,
            &mut out,
        );
        out.drain(..self.skip as usize);
        out
    }

    /// Bytes this ring holds on the heap, for the memory accounting.
    pub fn heap_bytes(&self) -> usize {
        let sealed: usize = self.sealed.iter().map(|c| c.data.len()).sum();
        sealed
            + self.sealed.capacity() * std::mem::size_of::<Sealed>()
            + self.open.bits.bytes.capacity()
    }

    fn trim(&mut self, capacity: usize) {
        while self.len() > capacity {
            self.skip += 1;
            let Some(oldest) = self.sealed.front() else {
                continue;
            };
            // While nothing is sealed the skip counts in the open chunk, which has more
            // points than are skipped; it applies to that chunk once it is sealed.
            if self.skip as usize == oldest.len() {
                self.sealed.pop_front();
                self.held -= self.skip;
                self.skip = 0;
            }
        }
    }
}

// === impl Sealed ===

impl Sealed {
    fn len(&self) -> usize {
        usize::from(self.data[0]) + 1
    }
}

// === impl Open ===

impl Open {
    fn push(&mut self, ts_ms: i64, value: f64) {
        if self.points == 0 {
            self.first_ts = ts_ms;
            self.last_delta = 0;
        } else {
            let delta = ts_ms.wrapping_sub(self.last_ts);
            self.bits.put_dod(delta.wrapping_sub(self.last_delta));
            self.last_delta = delta;
        }
        self.bits.put_value(value, &mut self.value);
        self.last_ts = ts_ms;
        self.points += 1;
    }

    fn seal(self) -> Sealed {
        let mut data = Vec::with_capacity(1 + self.bits.bytes.len());
        // A chunk holds 1 to CHUNK_POINTS (128) points, so the count less one fits a byte.
        data.push((self.points - 1) as u8);
        data.extend_from_slice(&self.bits.bytes);
        Sealed {
            first_ts: self.first_ts,
            data: data.into_boxed_slice(),
        }
    }
}

/// Decodes a chunk of `n` points into `out`.
fn decode(first_ts: i64, n: usize, bits: &[u8], out: &mut Vec<(i64, f64)>) {
    if n == 0 {
        return;
    }
    let mut reader = BitReader { bytes: bits, at: 0 };
    let mut state = ValueState::default();
    let (mut ts, mut delta) = (first_ts, 0i64);
    out.push((ts, reader.get_value(&mut state)));
    for _ in 1..n {
        delta = delta.wrapping_add(reader.get_dod());
        ts = ts.wrapping_add(delta);
        out.push((ts, reader.get_value(&mut state)));
    }
}

#[cfg(test)]
mod tests;
