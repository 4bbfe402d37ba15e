//! Finding a series' season by autocorrelation, and a least-squares trend (nalgebra).

use nalgebra::{Matrix2, Vector2};

/// Lowest autocorrelation a season must show.
const MIN_ACF: f64 = 0.3;
/// How far a season's autocorrelation must rise above the lowest one at a shorter lag.
const MIN_PROMINENCE: f64 = 0.1;

/// The season length of `series` (0 when none): among the lags from 2 to `max_lag` (and half
/// the series) where the autocorrelation of the mean-removed series has a local peak of at
/// least 0.3 that rises at least 0.1 above its lowest value at any shorter lag, the one with
/// the highest autocorrelation (the shortest on ties).
pub fn detect_season(series: &[f64], max_lag: usize) -> usize {
    let n = series.len();
    let max_lag = max_lag.min(n / 2);
    if max_lag < 4 {
        return 0;
    }
    let mean = series.iter().sum::<f64>() / n as f64;
    let centred: Vec<f64> = series.iter().map(|y| y - mean).collect();
    let variance: f64 = centred.iter().map(|v| v * v).sum();
    if variance <= f64::EPSILON {
        return 0;
    }
    let acf = autocorrelation(&centred, variance, max_lag);
    let mut best: Option<(usize, f64)> = None;
    let mut lowest = acf[1];
    for lag in 2..max_lag {
        lowest = lowest.min(acf[lag]);
        let peak = acf[lag] > acf[lag - 1] && acf[lag] >= acf[lag + 1];
        let candidate = peak && acf[lag] >= MIN_ACF && acf[lag] - lowest >= MIN_PROMINENCE;
        if candidate && best.is_none_or(|(_, r)| acf[lag] > r) {
            best = Some((lag, acf[lag]));
        }
    }
    best.map_or(0, |(lag, _)| lag)
}

/// The autocorrelation of `centred` (whose sum of squares is `variance`) at lags 0 to
/// `max_lag`, by FFT: the inverse transform of the power spectrum of the series padded with
/// zeros to twice its length. Rounded to 1e-10 so that lags equal in exact arithmetic stay
/// equal (a perfectly periodic series has plateaus the peak test must see as such).
fn autocorrelation(centred: &[f64], variance: f64, max_lag: usize) -> Vec<f64> {
    use rustfft::FftPlanner;
    use rustfft::num_complex::Complex;
    let size = (2 * centred.len()).next_power_of_two();
    let mut buffer: Vec<Complex<f64>> = centred
        .iter()
        .map(|&v| Complex::new(v, 0.0))
        .chain(std::iter::repeat(Complex::new(0.0, 0.0)))
        .take(size)
        .collect();
    let mut planner = FftPlanner::new();
    planner.plan_fft_forward(size).process(&mut buffer);
    for value in &mut buffer {
        *value = Complex::new(value.norm_sqr(), 0.0);
    }
    planner.plan_fft_inverse(size).process(&mut buffer);
    buffer
        .iter()
        .take(max_lag + 1)
        .map(|v| (v.re / size as f64 / variance * 1e10).round() / 1e10)
        .collect()
}

/// Ordinary least squares fit `y ≈ intercept + slope × index`.
pub fn linear_trend(series: &[f64]) -> (f64, f64) {
    let n = series.len() as f64;
    if series.len() < 2 {
        return (series.first().copied().unwrap_or(0.0), 0.0);
    }
    let (sum_x, sum_xx) = (0..series.len()).fold((0.0, 0.0), |(s, ss), i| {
        let x = i as f64;
        (s + x, ss + x * x)
    });
    let sum_y: f64 = series.iter().sum();
    let sum_xy: f64 = series.iter().enumerate().map(|(i, y)| i as f64 * y).sum();
    let normal = Matrix2::new(n, sum_x, sum_x, sum_xx);
    match normal.lu().solve(&Vector2::new(sum_y, sum_xy)) {
        Some(solution) => (solution[0], solution[1]),
        None => (sum_y / n, 0.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_season_under_a_mild_trend_and_none_in_noise() {
        let seasonal: Vec<f64> = (0..2000)
            .map(|i| 0.001 * i as f64 + (i as f64 * std::f64::consts::TAU / 96.0).sin())
            .collect();
        assert_eq!(detect_season(&seasonal, 700), 96);
        // A trend that dwarfs the season hides it (the series is not detrended, as in the
        // prototype): its autocorrelation only falls.
        let steep: Vec<f64> = (0..2000)
            .map(|i| 0.05 * i as f64 + (i as f64 * std::f64::consts::TAU / 96.0).sin())
            .collect();
        assert_eq!(detect_season(&steep, 700), 0);
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        let noise: Vec<f64> = (0..2000)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state % 1000) as f64
            })
            .collect();
        assert_eq!(detect_season(&noise, 700), 0);
        // The transform gives what the sum of products gives.
        let centred: Vec<f64> = noise.iter().map(|v| v - 500.0).collect();
        let variance: f64 = centred.iter().map(|v| v * v).sum();
        let fast = autocorrelation(&centred, variance, 50);
        for (lag, r) in fast.iter().enumerate() {
            let direct: f64 = centred[lag..]
                .iter()
                .zip(&centred)
                .map(|(a, b)| a * b)
                .sum::<f64>()
                / variance;
            assert!((r - direct).abs() < 1e-9, "lag {lag}: {r} vs {direct}");
        }
        assert_eq!(linear_trend(&[1.0, 3.0, 5.0]), (1.0, 2.0));
    }
}
