//! Finding a series' season by autocorrelation, and a least-squares trend for starting
//! values (nalgebra).

use nalgebra::{Matrix2, Vector2};

/// Lowest autocorrelation a season must show.
const MIN_ACF: f64 = 0.3;

/// The season length of `series` (0 when none): the lag, among local maxima of the
/// autocorrelation of the detrended series up to `max_lag` (and a third of the series), with
/// the highest autocorrelation above 0.3.
pub fn detect_season(series: &[f64], max_lag: usize) -> usize {
    let n = series.len();
    let max_lag = max_lag.min(n / 3);
    if max_lag < 4 {
        return 0;
    }
    let (intercept, slope) = linear_trend(series);
    let detrended: Vec<f64> = series
        .iter()
        .enumerate()
        .map(|(i, y)| y - (intercept + slope * i as f64))
        .collect();
    let variance: f64 = detrended.iter().map(|v| v * v).sum();
    if variance <= f64::EPSILON {
        return 0;
    }
    let acf = |lag: usize| -> f64 {
        detrended[lag..]
            .iter()
            .zip(&detrended)
            .map(|(a, b)| a * b)
            .sum::<f64>()
            / variance
    };
    let values: Vec<f64> = (0..=max_lag + 1)
        .map(|lag| if lag < n { acf(lag) } else { 0.0 })
        .collect();
    let mut best = (0, MIN_ACF);
    for lag in 2..=max_lag {
        let peak = values[lag] > values[lag - 1] && values[lag] >= values[lag + 1];
        if peak && values[lag] > best.1 {
            best = (lag, values[lag]);
        }
    }
    best.0
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
    fn finds_the_season_and_ignores_noise_and_trend() {
        let seasonal: Vec<f64> = (0..2000)
            .map(|i| 0.01 * i as f64 + (i as f64 * std::f64::consts::TAU / 96.0).sin())
            .collect();
        assert_eq!(detect_season(&seasonal, 700), 96);
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
        assert_eq!(linear_trend(&[1.0, 3.0, 5.0]), (1.0, 2.0));
    }
}
