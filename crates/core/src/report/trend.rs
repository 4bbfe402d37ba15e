//! A least-squares line with the confidence interval of its slope.

use nalgebra::{DMatrix, DVector};

/// A fitted line `y = intercept + slope · x`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LineFit {
    /// Value at x = 0.
    pub intercept: f64,
    /// Change of y per unit of x.
    pub slope: f64,
    /// Half-width of the slope's 95% confidence interval.
    pub slope_ci95: f64,
    /// Points fitted.
    pub points: usize,
}

impl LineFit {
    /// The line's value at `x`.
    pub fn at(&self, x: f64) -> f64 {
        self.intercept + self.slope * x
    }

    /// Whether the slope's 95% interval excludes zero (a slope of rounding error, on points
    /// that lie exactly on a flat line, is not significant).
    pub fn significant(&self) -> bool {
        let scale = self.intercept.abs().max(1.0);
        self.slope.abs() > self.slope_ci95 && self.slope.abs() > 1e-9 * scale
    }
}

/// Fits a line to `(x, y)` points by ordinary least squares (the normal equations solved with
/// nalgebra); `None` with fewer than three points or when every x is the same.
pub fn fit_line(points: &[(f64, f64)]) -> Option<LineFit> {
    let n = points.len();
    if n < 3 {
        return None;
    }
    let x = DMatrix::from_fn(n, 2, |i, j| if j == 0 { 1.0 } else { points[i].0 });
    let y = DVector::from_iterator(n, points.iter().map(|p| p.1));
    let xtx_inv = (x.transpose() * &x).try_inverse()?;
    let beta = &xtx_inv * x.transpose() * &y;
    let residuals = &y - &x * &beta;
    let dof = (n - 2) as f64;
    let variance = residuals.norm_squared() / dof;
    let slope_se = (variance * xtx_inv[(1, 1)]).max(0.0).sqrt();
    Some(LineFit {
        intercept: beta[0],
        slope: beta[1],
        slope_ci95: student_t975(n - 2) * slope_se,
        points: n,
    })
}

/// The 97.5% quantile of Student's t with `dof` degrees of freedom (two-sided 95%): a table
/// up to 30, then the Cornish-Fisher expansion around the normal quantile.
pub fn student_t975(dof: usize) -> f64 {
    const TABLE: [f64; 30] = [
        12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
        2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
        2.052, 2.048, 2.045, 2.042,
    ];
    match dof {
        0 => f64::INFINITY,
        1..=30 => TABLE[dof - 1],
        _ => {
            let z = 1.959_964f64;
            let v = dof as f64;
            z + (z.powi(3) + z) / (4.0 * v)
                + (5.0 * z.powi(5) + 16.0 * z.powi(3) + 3.0 * z) / (96.0 * v * v)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_noisy_line_is_found_with_its_interval() {
        // By hand: x̄ = 2, ȳ = 3, Sxx = 10, Sxy = 0 + 1.5 + 0 - 0.5 + 2 = 3.
        let points = [(0.0, 3.0), (1.0, 1.5), (2.0, 4.0), (3.0, 2.5), (4.0, 4.0)];
        let fit = fit_line(&points).unwrap();
        assert!((fit.slope - 0.3).abs() < 1e-12, "{}", fit.slope);
        assert!((fit.intercept - 2.4).abs() < 1e-12);
        // Residuals 0.6, -1.2, 1.0, -0.8, 0.4: RSS 3.6, s² = 3.6 / 3, se = √(s² / Sxx).
        let se = (1.2f64 / 10.0).sqrt();
        assert!((fit.slope_ci95 - 3.182 * se).abs() < 1e-9);
        assert!(!fit.significant());
    }

    #[test]
    fn a_clean_rise_is_significant_and_flat_points_are_not() {
        let rising: Vec<(f64, f64)> = (0..24)
            .map(|i| (f64::from(i), 10.0 + f64::from(i)))
            .collect();
        let fit = fit_line(&rising).unwrap();
        assert!((fit.slope - 1.0).abs() < 1e-9 && fit.significant());
        assert!((fit.at(24.0) - 34.0).abs() < 1e-9);
        assert!(fit_line(&[(1.0, 1.0), (1.0, 2.0), (1.0, 3.0)]).is_none());
        assert!(fit_line(&[(0.0, 1.0), (1.0, 2.0)]).is_none());
        assert!((student_t975(1000) - 1.962).abs() < 0.001);
    }
}
