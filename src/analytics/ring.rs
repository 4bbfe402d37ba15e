//! `SeriesRing`: the last N points of one series, held compactly in memory.
//!
//! 10,000 agents x 10 metrics x 1,000 points is 100 million points: at the 16 bytes of a plain
//! `(i64, f64)` that is 1.6 GB. Here points are encoded as Gorilla (Facebook's in-memory
//! time-series store, which Prometheus' chunks follow) encodes them, on an `f32` value (seven
//! significant digits, as Netdata's 32-bit storage numbers keep; the detectors, the alert rules,
//! the latest readings and the minute rollups all see the full `f64` before it is stored):
//! - the timestamp as a delta of deltas: one bit for a point on the usual beat, nine for a few
//!   milliseconds of jitter;
//! - the value XORed with the one before: one bit when it repeats, else only the bits that
//!   changed, placed by a window of leading and trailing zero bits that is reused while it fits.
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
    /// The newest value's bits.
    last_value: u32,
    /// Leading and trailing zero bits of the last XOR window written.
    window: Option<(u32, u32)>,
    points: usize,
    bits: BitWriter,
}

// === impl SeriesRing ===

impl SeriesRing {
    /// Appends a point, then drops the oldest beyond `capacity` (at least one is kept).
    pub fn push(&mut self, ts_ms: i64, value: f64, capacity: usize) {
        if self.open.points == CHUNK_POINTS {
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
        if self.open.points == 0 {
            return None;
        }
        let value = f32::from_bits(self.open.last_value);
        Some((self.open.last_ts, f64::from(value)))
    }

    /// Every point, oldest first.
    pub fn points(&self) -> Vec<(i64, f64)> {
        let mut out = Vec::with_capacity(self.len());
        for chunk in &self.sealed {
            decode(chunk.first_ts, chunk.len(), &chunk.data[1..], &mut out);
        }
        let open = &self.open;
        decode(open.first_ts, open.points, &open.bits.bytes, &mut out);
        out.drain(..self.skip);
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
}

// === impl Open ===

impl Open {
    fn push(&mut self, ts_ms: i64, value: f32) {
        let value = value.to_bits();
        if self.points == 0 {
            self.first_ts = ts_ms;
            self.last_delta = 0;
            self.bits.put(u64::from(value), 32);
        } else {
            let delta = ts_ms.wrapping_sub(self.last_ts);
            self.bits.put_dod(delta.wrapping_sub(self.last_delta));
            self.last_delta = delta;
            self.bits.put_xor(self.last_value ^ value, &mut self.window);
        }
        self.last_ts = ts_ms;
        self.last_value = value;
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
    let (mut ts, mut delta) = (first_ts, 0i64);
    let mut value = reader.get(32) as u32;
    let mut window = None;
    out.push((ts, f64::from(f32::from_bits(value))));
    for _ in 1..n {
        delta = delta.wrapping_add(reader.get_dod());
        ts = ts.wrapping_add(delta);
        value ^= reader.get_xor(&mut window);
        out.push((ts, f64::from(f32::from_bits(value))));
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
    /// Appends the low `width` bits of `value`.
    fn put(&mut self, value: u64, width: u32) {
        let mut left = width;
        while left > 0 {
            if self.used == 0 {
                self.bytes.push(0);
            }
            let free = 8 - self.used;
            let take = free.min(left);
            let part = ((value >> (left - take)) & ((1 << take) - 1)) as u8;
            // A byte was pushed above whenever `used` was 0, so there is a last byte.
            let last = self.bytes.len() - 1;
            self.bytes[last] |= part << (free - take);
            self.used = (self.used + take) % 8;
            left -= take;
        }
    }

    /// Appends a value's XOR with the one before, in the window of `window` when it fits.
    fn put_xor(&mut self, xor: u32, window: &mut Option<(u32, u32)>) {
        if xor == 0 {
            return self.put(0, 1);
        }
        let (lead, trail) = (xor.leading_zeros(), xor.trailing_zeros());
        match *window {
            Some((w_lead, w_trail)) if lead >= w_lead && trail >= w_trail => {
                self.put(0b10, 2);
                self.put(u64::from(xor >> w_trail), 32 - w_lead - w_trail);
            }
            _ => {
                // `xor` is not 0, so lead is at most 31 and the length at least 1.
                let len = 32 - lead - trail;
                self.put(0b11, 2);
                self.put(u64::from(lead), 5);
                self.put(u64::from(len - 1), 5);
                self.put(u64::from(xor >> trail), len);
                *window = Some((lead, trail));
            }
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
        let mut value = 0u64;
        let mut left = width;
        while left > 0 {
            let byte = self.bytes.get(self.at / 8).copied().unwrap_or(0);
            let free = 8 - (self.at % 8) as u32;
            let take = free.min(left);
            let part = (byte >> (free - take)) & ((1u16 << take) - 1) as u8;
            value = (value << take) | u64::from(part);
            self.at += take as usize;
            left -= take;
        }
        value
    }

    fn get_xor(&mut self, window: &mut Option<(u32, u32)>) -> u32 {
        if self.get(1) == 0 {
            return 0;
        }
        if self.get(1) == 0 {
            let (lead, trail) = window.unwrap_or((0, 0));
            return (self.get(32 - lead - trail) as u32) << trail;
        }
        let lead = self.get(5) as u32;
        let len = self.get(5) as u32 + 1;
        let trail = 32 - lead - len;
        *window = Some((lead, trail));
        (self.get(len) as u32) << trail
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
