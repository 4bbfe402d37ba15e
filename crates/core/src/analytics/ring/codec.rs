//! The bits of a ring's chunks: timestamps as deltas of deltas, values either as decimals
//! (an integer and a power of ten, sent as the difference from the last one) or as `f32`
//! bits XORed with the last value's (Gorilla).
//!
//! A value code starts with:
//! - `0`: the same value as the last one;
//! - `10`: a decimal with the last one's scale, as the zigzag difference of its integer from
//!   the last one's: `0` and the difference in the chunk's current width, or `1`, 6 bits of a
//!   new width less one and the difference in that width, which becomes the current one;
//! - `110`: `f32` bits XORed with the last value's, in the last XOR window;
//! - `1110`: the same with a new window (5 bits of leading zeros, 5 of length less one);
//! - `1111`: a decimal with a new scale: 3 bits of scale, 6 bits of length less one, and
//!   the zigzag integer.

/// Delta-of-delta classes of timestamps: prefix bits, prefix length, payload bits.
const DOD_CLASSES: [(u64, u32, u32); 4] = [
    (0b10, 2, 7),
    (0b110, 3, 12),
    (0b1110, 4, 20),
    (0b1111, 4, 64),
];

/// Bits a new width of decimal differences costs: a series whose differences keep their size
/// sends one bit for it, as Gorilla's XOR window is reused while it fits.
const WIDTH_BITS: u32 = 6;

/// Most decimal places a value is stored with as a decimal.
const MAX_SCALE: usize = 6;
const POW10: [f64; MAX_SCALE + 1] = [1.0, 10.0, 100.0, 1e3, 1e4, 1e5, 1e6];
/// Largest integer a decimal may have: beyond it an `f64` does not hold every integer.
const MAX_DECIMAL: f64 = 9_007_199_254_740_992.0;
/// Largest integer the one try of [`decimal`] is made at: below 2^51 the value's own rounding
/// and the product's together are under half a unit, so the product rounds to the integer.
const SURE_DECIMAL: f64 = MAX_DECIMAL / 4.0;

/// `value` as the integer `n` with `value == n / 10^scale`, exactly, at `scale`.
fn at_scale(value: f64, scale: usize) -> Option<i64> {
    let n = (value * POW10[scale]).round();
    if n.abs() >= MAX_DECIMAL {
        return None;
    }
    // Compared as the decoder computes it, so -0.0 (which an integer cannot carry) is not one.
    let n = n as i64;
    ((n as f64 / POW10[scale]).to_bits() == value.to_bits()).then_some(n)
}

/// `value` as a decimal with the fewest places (at most six), if it is one.
pub(super) fn decimal(value: f64) -> Option<(usize, i64)> {
    if !value.is_finite() {
        return None;
    }
    // One try, at the most places whose integer is surely found; then the fewest places are
    // the integer's trailing zeros taken off (n / 10^s and (n / 10) / 10^(s - 1) are the same
    // real number, and division rounds it the same way).
    let mut scale = (0..=MAX_SCALE)
        .rev()
        .find(|&scale| (value * POW10[scale]).abs() < SURE_DECIMAL)?;
    let mut n = at_scale(value, scale)?;
    while scale > 0 && n % 10 == 0 {
        n /= 10;
        scale -= 1;
    }
    Some((scale, n))
}

/// What encoder and decoder both know of the value before. Packed (24 bytes): every open
/// chunk of every series holds one.
#[derive(Debug, Clone, Copy)]
pub(super) struct ValueState {
    /// The last value as decoded.
    pub last: f64,
    /// Its integer, when it was stored as a decimal.
    integer: i64,
    /// Its `f32` bits, what an XOR code is taken against.
    bits: u32,
    /// Its scale when it was stored as a decimal, else [`NOT_DECIMAL`].
    scale: u8,
    /// Leading and trailing zero bits of the last XOR window.
    window: Option<(u8, u8)>,
    /// Bits of the current width of decimal differences (0 before the first).
    width: u8,
}

/// The scale of a value that was not stored as a decimal.
const NOT_DECIMAL: u8 = u8::MAX;

impl Default for ValueState {
    fn default() -> Self {
        ValueState {
            last: 0.0,
            integer: 0,
            bits: 0,
            scale: NOT_DECIMAL,
            window: None,
            width: 0,
        }
    }
}

impl ValueState {
    fn remember(&mut self, value: f64, decimal: Option<(usize, i64)>) {
        self.last = value;
        self.bits = (value as f32).to_bits();
        (self.scale, self.integer) = match decimal {
            Some((scale, n)) => (scale as u8, n),
            None => (NOT_DECIMAL, 0),
        };
    }

    /// The last value's scale and integer, when it was stored as a decimal.
    fn last_decimal(&self) -> Option<(usize, i64)> {
        (self.scale != NOT_DECIMAL).then_some((usize::from(self.scale), self.integer))
    }
}

/// Zigzag: small magnitudes of either sign become small unsigned numbers.
fn zigzag(n: i64) -> u64 {
    ((n << 1) ^ (n >> 63)) as u64
}

fn unzigzag(n: u64) -> i64 {
    ((n >> 1) as i64) ^ -((n & 1) as i64)
}

/// Appends bits, most significant first.
#[derive(Debug, Default)]
pub(super) struct BitWriter {
    /// The bits so far, the last byte perhaps partly used.
    pub bytes: Vec<u8>,
    /// Bits used in the last byte (0 means a new byte is needed).
    used: u8,
}

impl BitWriter {
    /// Appends the low `width` bits of `value`.
    fn put(&mut self, value: u64, width: u32) {
        let mut left = width;
        while left > 0 {
            if self.used == 0 {
                self.bytes.push(0);
            }
            let free = 8 - u32::from(self.used);
            let take = free.min(left);
            let part = ((value >> (left - take)) & ((1 << take) - 1)) as u8;
            // A byte was pushed above whenever `used` was 0, so there is a last byte.
            let last = self.bytes.len() - 1;
            self.bytes[last] |= part << (free - take);
            self.used = ((u32::from(self.used) + take) % 8) as u8;
            left -= take;
        }
    }

    /// Appends a timestamp's delta of deltas.
    pub fn put_dod(&mut self, dod: i64) {
        if dod == 0 {
            return self.put(0, 1);
        }
        let z = zigzag(dod);
        for (prefix, prefix_len, payload) in DOD_CLASSES {
            if payload == 64 || z < 1 << payload {
                self.put(prefix, prefix_len);
                return self.put(z, payload);
            }
        }
    }

    /// Appends `value` after the one `state` remembers, and remembers it as stored.
    pub fn put_value(&mut self, value: f64, state: &mut ValueState) {
        let same = match state.last_decimal() {
            Some(_) => value.to_bits() == state.last.to_bits(),
            // A decimal is kept exact even where its f32 is the last one's.
            None => (value as f32).to_bits() == state.bits && decimal(value).is_none(),
        };
        if same {
            return self.put(0, 1);
        }
        // The last scale first: a value with fewer places is a decimal at it too.
        if let Some((scale, last)) = state.last_decimal()
            && let Some(n) = at_scale(value, scale)
        {
            // Both integers are below 2^53: the difference cannot overflow.
            let z = zigzag(n - last);
            let len = (64 - z.leading_zeros()).max(1);
            self.put(0b10, 2);
            // The current width while it holds the difference and a new one would not be
            // cheaper; so the width follows the series' swings down as well as up.
            let width = u32::from(state.width);
            if len <= width && width <= len + WIDTH_BITS {
                self.put(0, 1);
                self.put(z, width);
            } else {
                self.put(1, 1);
                self.put(u64::from(len - 1), WIDTH_BITS);
                self.put(z, len);
                state.width = len as u8;
            }
            return state.remember(value, Some((scale, n)));
        }
        match decimal(value) {
            // A new scale (or the first decimal): the integer in full.
            Some((scale, n)) => {
                let z = zigzag(n);
                let len = (64 - z.leading_zeros()).max(1);
                self.put(0b1111, 4);
                self.put(scale as u64, 3);
                self.put(u64::from(len - 1), 6);
                self.put(z, len);
                state.remember(value, Some((scale, n)));
            }
            None => {
                let bits = (value as f32).to_bits();
                self.put_xor(bits ^ state.bits, &mut state.window);
                state.remember(f64::from(f32::from_bits(bits)), None);
            }
        }
    }

    /// Appends an XOR of `f32` bits, in the window of `window` when it fits.
    fn put_xor(&mut self, xor: u32, window: &mut Option<(u8, u8)>) {
        // Zero only after a decimal whose f32 bits are the same: one bit in a new window.
        let (lead, trail) = if xor == 0 {
            (31, 0)
        } else {
            (xor.leading_zeros(), xor.trailing_zeros())
        };
        match window.map(|(lead, trail)| (u32::from(lead), u32::from(trail))) {
            Some((w_lead, w_trail)) if xor != 0 && lead >= w_lead && trail >= w_trail => {
                self.put(0b110, 3);
                self.put(u64::from(xor >> w_trail), 32 - w_lead - w_trail);
            }
            _ => {
                let len = 32 - lead - trail;
                self.put(0b1110, 4);
                self.put(u64::from(lead), 5);
                self.put(u64::from(len - 1), 5);
                self.put(u64::from(xor >> trail), len);
                *window = Some((lead as u8, trail as u8));
            }
        }
    }
}

/// Reads what a `BitWriter` wrote.
pub(super) struct BitReader<'a> {
    /// What was written.
    pub bytes: &'a [u8],
    /// Bits read so far.
    pub at: usize,
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

    /// Counts leading one bits, at most `max`, reading the zero that ends them.
    fn ones(&mut self, max: usize) -> usize {
        let mut ones = 0;
        while ones < max && self.get(1) == 1 {
            ones += 1;
        }
        ones
    }

    /// Reads a timestamp's delta of deltas.
    pub fn get_dod(&mut self) -> i64 {
        let ones = self.ones(4);
        if ones == 0 {
            return 0;
        }
        unzigzag(self.get(DOD_CLASSES[ones - 1].2))
    }

    /// Reads the value after the one `state` remembers, and remembers it.
    pub fn get_value(&mut self, state: &mut ValueState) -> f64 {
        match self.ones(4) {
            0 => {}
            1 => {
                if self.get(1) == 1 {
                    state.width = self.get(WIDTH_BITS) as u8 + 1;
                }
                let z = self.get(u32::from(state.width));
                let (scale, last) = state.last_decimal().unwrap_or_default();
                let n = last.wrapping_add(unzigzag(z));
                state.remember(n as f64 / POW10[scale], Some((scale, n)));
            }
            ones @ (2 | 3) => {
                if ones == 3 {
                    let lead = self.get(5) as u32;
                    let len = self.get(5) as u32 + 1;
                    state.window = Some((lead as u8, 32u32.saturating_sub(lead + len) as u8));
                }
                let (lead, trail) = state.window.unwrap_or((0, 0));
                let (lead, trail) = (u32::from(lead), u32::from(trail));
                let width = 32u32.saturating_sub(lead + trail);
                let xor = (self.get(width) as u32).checked_shl(trail).unwrap_or(0);
                state.remember(f64::from(f32::from_bits(state.bits ^ xor)), None);
            }
            _ => {
                let scale = (self.get(3) as usize).min(MAX_SCALE);
                let len = self.get(6) as u32 + 1;
                let n = unzigzag(self.get(len));
                state.remember(n as f64 / POW10[scale], Some((scale, n)));
            }
        }
        state.last
    }
}
