//! `SeriesRing`: the last N points of one series, held compactly in memory.
//!
//! 10,000 agents x 10 metrics x 1,000 points is 100 million points: at the 16 bytes of a plain
//! `(i64, f64)` that is 1.6 GB. Here a point costs about 4.1 bytes: the value as an `f32`
//! (seven significant digits, as Netdata's 32-bit storage numbers keep; the detectors, the
//! alert rules and the minute rollups all see the full `f64` before it is stored) and the
//! timestamp as a delta of deltas in a bit stream, as Gorilla (Facebook's in-memory time-series
//! store, which Prometheus' chunks follow) encodes them: one bit for a point on the usual
//! beat, nine for a few milliseconds of jitter.
//!
//! Points go into an open chunk; a full chunk is sealed into one exact-size allocation. The
//! oldest chunk is dropped once every point in it is beyond the capacity; until then a skip
//! count hides its oldest points, so the ring always answers exactly the last `capacity`.

use std::collections::VecDeque;

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
    skip: usize,
    /// Points held, skipped ones included.
    held: usize,
}

/// A full chunk: the first timestamp, then one allocation holding the values and the bits.
#[derive(Debug)]
struct Sealed {
    first_ts: i64,
    /// Number of points, then their values (`f32`, little endian), then the timestamp bits.
    data: Box<[u8]>,
}

/// The chunk being filled.
#[derive(Debug, Default)]
struct Open {
    first_ts: i64,
    last_ts: i64,
    last_delta: i64,
    values: Vec<f32>,
    bits: BitWriter,
}

// === impl SeriesRing ===

impl SeriesRing {
    /// Appends a point, then drops the oldest beyond `capacity` (at least one is kept).
    pub fn push(&mut self, ts_ms: i64, value: f64, capacity: usize) {
        if self.open.values.len() == CHUNK_POINTS {
            let full = std::mem::take(&mut self.open);
            self.sealed.push_back(full.seal());
        }
        self.open.push(ts_ms, value as f32);
        self.held += 1;
        self.trim(capacity.max(1));
    }

    /// Number of points answered.
    pub fn len(&self) -> usize {
        self.held - self.skip
    }

    /// Whether no point is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The newest point.
    pub fn last(&self) -> Option<(i64, f64)> {
        let value = *self.open.values.last()?;
        Some((self.open.last_ts, f64::from(value)))
    }

    /// Every point, oldest first.
    pub fn points(&self) -> Vec<(i64, f64)> {
        let mut out = Vec::with_capacity(self.len());
        for chunk in &self.sealed {
            let (values, bits) = chunk.parts();
            decode(chunk.first_ts, values, bits, &mut out);
        }
        decode(
            self.open.first_ts,
            self.open.values.iter().copied(),
            &self.open.bits.bytes,
            &mut out,
        );
        out.drain(..self.skip);
        out
    }

    /// Bytes this ring holds on the heap, for the memory accounting.
    pub fn heap_bytes(&self) -> usize {
        let sealed: usize = self.sealed.iter().map(|c| c.data.len()).sum();
        sealed
            + self.sealed.capacity() * std::mem::size_of::<Sealed>()
            + self.open.values.capacity() * 4
            + self.open.bits.bytes.capacity()
    }

    fn trim(&mut self, capacity: usize) {
        while self.held - self.skip > capacity {
            self.skip += 1;
            let Some(oldest) = self.sealed.front() else {
                continue;
            };
            // While nothing is sealed the skip counts in the open chunk, which has more
            // points than are skipped; it applies to that chunk once it is sealed.
            if self.skip == oldest.len() {
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

    fn parts(&self) -> (impl Iterator<Item = f32> + '_, &[u8]) {
        let n = self.len();
        let values = self.data[1..1 + 4 * n]
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]));
        (values, &self.data[1 + 4 * n..])
    }
}

// === impl Open ===

impl Open {
    fn push(&mut self, ts_ms: i64, value: f32) {
        if self.values.is_empty() {
            self.first_ts = ts_ms;
            self.last_delta = 0;
        } else {
            let delta = ts_ms.wrapping_sub(self.last_ts);
            self.bits.put_dod(delta.wrapping_sub(self.last_delta));
            self.last_delta = delta;
        }
        self.last_ts = ts_ms;
        self.values.push(value);
    }

    fn seal(self) -> Sealed {
        let n = self.values.len();
        let mut data = Vec::with_capacity(1 + 4 * n + self.bits.bytes.len());
        // A chunk holds 1 to CHUNK_POINTS (128) points, so n - 1 fits a byte.
        data.push((n - 1) as u8);
        for value in &self.values {
            data.extend_from_slice(&value.to_le_bytes());
        }
        data.extend_from_slice(&self.bits.bytes);
        Sealed {
            first_ts: self.first_ts,
            data: data.into_boxed_slice(),
        }
    }
}

/// Decodes a chunk's points into `out`.
fn decode(
    first_ts: i64,
    values: impl Iterator<Item = f32>,
    bits: &[u8],
    out: &mut Vec<(i64, f64)>,
) {
    let mut reader = BitReader { bytes: bits, at: 0 };
    let (mut ts, mut delta) = (first_ts, 0i64);
    for (i, value) in values.enumerate() {
        if i > 0 {
            delta = delta.wrapping_add(reader.get_dod());
            ts = ts.wrapping_add(delta);
        }
        out.push((ts, f64::from(value)));
    }
}

/// Delta-of-delta classes: prefix bits, prefix length, payload bits.
const CLASSES: [(u64, u32, u32); 4] = [
    (0b10, 2, 7),
    (0b110, 3, 12),
    (0b1110, 4, 20),
    (0b1111, 4, 64),
];

/// Zigzag: small magnitudes of either sign become small unsigned numbers.
fn zigzag(n: i64) -> u64 {
    ((n << 1) ^ (n >> 63)) as u64
}

fn unzigzag(n: u64) -> i64 {
    ((n >> 1) as i64) ^ -((n & 1) as i64)
}

/// Appends bits, most significant first.
#[derive(Debug, Default)]
struct BitWriter {
    bytes: Vec<u8>,
    /// Bits used in the last byte (0 means a new byte is needed).
    used: u32,
}

impl BitWriter {
    fn put(&mut self, value: u64, width: u32) {
        for shift in (0..width).rev() {
            if self.used == 0 {
                self.bytes.push(0);
            }
            let bit = ((value >> shift) & 1) as u8;
            // A byte was pushed above whenever `used` was 0, so there is a last byte.
            let last = self.bytes.len() - 1;
            self.bytes[last] |= bit << (7 - self.used);
            self.used = (self.used + 1) % 8;
        }
    }

    fn put_dod(&mut self, dod: i64) {
        if dod == 0 {
            return self.put(0, 1);
        }
        let z = zigzag(dod);
        for (prefix, prefix_len, payload) in CLASSES {
            if payload == 64 || z < 1 << payload {
                self.put(prefix, prefix_len);
                return self.put(z, payload);
            }
        }
    }
}

/// Reads what a `BitWriter` wrote.
struct BitReader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl BitReader<'_> {
    fn get(&mut self, width: u32) -> u64 {
        let mut value = 0;
        for _ in 0..width {
            let byte = self.bytes.get(self.at / 8).copied().unwrap_or(0);
            value = (value << 1) | u64::from((byte >> (7 - self.at % 8)) & 1);
            self.at += 1;
        }
        value
    }

    fn get_dod(&mut self) -> i64 {
        if self.get(1) == 0 {
            return 0;
        }
        let mut ones = 1;
        while ones < 4 && self.get(1) == 1 {
            ones += 1;
        }
        let payload = CLASSES[ones - 1].2;
        unzigzag(self.get(payload))
    }
}

#[cfg(test)]
mod tests;
