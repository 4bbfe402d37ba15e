//! Exponential smoothing models: Holt's damped trend and additive Holt-Winters (damped), with
//! their state updated in O(1) per point and parameters fitted by a grid search of the
//! one-step squared error over a trailing window (`docs/forecaster-prototype.md`).

/// Smoothing parameters; `gamma` is unused without a season.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Params {
    /// Level weight.
    pub alpha: f64,
    /// Trend weight.
    pub beta: f64,
    /// Trend damping.
    pub phi: f64,
    /// Season weight.
    pub gamma: f64,
}

/// The state of a damped (seasonal) exponential smoothing model.
#[derive(Debug, Clone)]
pub struct Smoother {
    params: Params,
    level: f64,
    trend: f64,
    /// Seasonal offsets, indexed by position in the season; empty without a season.
    season: Vec<f64>,
    /// Position of the next point in the season.
    phase: usize,
    /// Running mean absolute one-step error since the fit, and how many points it holds.
    scale: f64,
    scored: u32,
}

impl Smoother {
    /// The one-step forecast before seeing the next point.
    pub fn one_step(&self) -> f64 {
        let seasonal = self.season.get(self.phase).copied().unwrap_or(0.0);
        self.level + self.params.phi * self.trend + seasonal
    }

    /// Folds in `y`.
    pub fn update(&mut self, y: f64) {
        // A point far outside the recent one-step errors (a spike) moves the state only as
        // far as the limit: the next points tell whether it was a spike or a new level.
        let forecast = self.one_step();
        let error = y - forecast;
        let y = if self.scored >= ROBUST_AFTER {
            let limit = ROBUST_LIMIT * self.scale;
            forecast + error.clamp(-limit, limit)
        } else {
            y
        };
        self.scale += (error.abs() - self.scale) / f64::from(self.scored.min(ROBUST_SPAN) + 1);
        self.scored += 1;
        let Params {
            alpha,
            beta,
            phi,
            gamma,
        } = self.params;
        let previous = self.level;
        let damped = phi * self.trend;
        let seasonal = self.season.get(self.phase).copied().unwrap_or(0.0);
        self.level = alpha * (y - seasonal) + (1.0 - alpha) * (previous + damped);
        self.trend = beta * (self.level - previous) + (1.0 - beta) * damped;
        if let Some(slot) = self.season.get_mut(self.phase) {
            *slot = gamma * (y - previous - damped) + (1.0 - gamma) * *slot;
            self.phase = (self.phase + 1) % self.season.len();
        }
    }

    /// Forecasts for the next `horizon` points.
    pub fn forecast(&self, horizon: usize, out: &mut Vec<f64>) {
        out.clear();
        let mut damping = 0.0;
        let mut power = 1.0;
        for h in 1..=horizon {
            power *= self.params.phi;
            damping += power;
            let seasonal = if self.season.is_empty() {
                0.0
            } else {
                self.season[(self.phase + h - 1) % self.season.len()]
            };
            out.push(self.level + damping * self.trend + seasonal);
        }
    }
}

/// One-step errors beyond this many times the running mean absolute error are clipped.
const ROBUST_LIMIT: f64 = 4.0;
/// Points scored after a fit before clipping starts.
const ROBUST_AFTER: u32 = 20;
/// The running mean absolute error weighs about this many recent points.
const ROBUST_SPAN: u32 = 50;

/// The damped-trend grid: level weights, trend weights as a share of the level weight,
/// damping. Every combination is tried; ties go to the earliest.
const DAMPED_ALPHAS: [f64; 9] = [0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9, 1.0];
const DAMPED_BETA_SHARES: [f64; 5] = [0.0, 0.02, 0.05, 0.1, 0.2];
const DAMPED_PHIS: [f64; 4] = [0.8, 0.9, 0.95, 0.98];
/// The seasonal grid: level weights, trend weights (share of the level weight), season
/// weights (share of what the level leaves), damping.
const SEASONAL_ALPHAS: [f64; 7] = [0.02, 0.05, 0.1, 0.2, 0.4, 0.7, 1.0];
const SEASONAL_BETA_SHARES: [f64; 3] = [0.0, 0.05, 0.2];
const SEASONAL_GAMMA_SHARES: [f64; 5] = [0.0, 0.05, 0.1, 0.2, 0.4];
const SEASONAL_PHIS: [f64; 3] = [0.8, 0.9, 0.98];

/// The grid in error-correction form (`l += phi b + alpha e`, `b = phi b + beta e`,
/// `s += gamma e`), as parallel arrays so that one pass over the window advances every
/// point of the grid at once (the inner loop runs over the grid and vectorises).
struct Grid {
    alpha: Vec<f64>,
    beta: Vec<f64>,
    gamma: Vec<f64>,
    phi: Vec<f64>,
}

impl Grid {
    fn damped() -> Grid {
        let mut grid = Grid::with_capacity(180);
        for alpha in DAMPED_ALPHAS {
            for share in DAMPED_BETA_SHARES {
                for phi in DAMPED_PHIS {
                    grid.push(alpha, alpha * share, 0.0, phi);
                }
            }
        }
        grid
    }

    fn seasonal() -> Grid {
        let mut grid = Grid::with_capacity(315);
        for alpha in SEASONAL_ALPHAS {
            for beta_share in SEASONAL_BETA_SHARES {
                for gamma_share in SEASONAL_GAMMA_SHARES {
                    for phi in SEASONAL_PHIS {
                        grid.push(alpha, alpha * beta_share, (1.0 - alpha) * gamma_share, phi);
                    }
                }
            }
        }
        grid
    }

    fn with_capacity(n: usize) -> Grid {
        Grid {
            alpha: Vec::with_capacity(n),
            beta: Vec::with_capacity(n),
            gamma: Vec::with_capacity(n),
            phi: Vec::with_capacity(n),
        }
    }

    fn push(&mut self, alpha: f64, beta: f64, gamma: f64, phi: f64) {
        self.alpha.push(alpha);
        self.beta.push(beta);
        self.gamma.push(gamma);
        self.phi.push(phi);
    }

    fn len(&self) -> usize {
        self.alpha.len()
    }

    /// The first point with the smallest finite error.
    fn best(sse: &[f64]) -> Option<usize> {
        let mut best: Option<usize> = None;
        for (g, &e) in sse.iter().enumerate() {
            if e.is_finite() && best.is_none_or(|b| e < sse[b]) {
                best = Some(g);
            }
        }
        best
    }

    /// The component-form parameters of point `g` (the trend weight of the component form
    /// is the error-correction one over the level weight; the season weight is the same).
    fn params(&self, g: usize) -> Params {
        let alpha = self.alpha[g];
        Params {
            alpha,
            beta: if alpha > 0.0 {
                self.beta[g] / alpha
            } else {
                0.0
            },
            phi: self.phi[g],
            gamma: self.gamma[g],
        }
    }
}

/// Holt's damped trend fitted to `window` (at least two points): every grid point run from
/// the first value with no trend, scored by its one-step squared error after the first
/// `min(10, n / 4)` points; the best one's state at the window's end.
pub fn fit_damped(window: &[f64]) -> Option<Smoother> {
    let n = window.len();
    if n < 2 {
        return None;
    }
    let grid = Grid::damped();
    let g_len = grid.len();
    let mut level = vec![window[0]; g_len];
    let mut trend = vec![0.0; g_len];
    let mut sse = vec![0.0; g_len];
    let skip = 10.min(n / 4);
    for (i, &y) in window.iter().enumerate().skip(1) {
        let counted = if i > skip { 1.0 } else { 0.0 };
        for g in 0..g_len {
            let forecast = level[g] + grid.phi[g] * trend[g];
            let error = y - forecast;
            sse[g] += counted * error * error;
            level[g] = forecast + grid.alpha[g] * error;
            trend[g] = grid.phi[g] * trend[g] + grid.beta[g] * error;
        }
    }
    let best = Grid::best(&sse)?;
    Some(Smoother {
        params: grid.params(best),
        level: level[best],
        trend: trend[best],
        season: Vec::new(),
        phase: 0,
        scale: 0.0,
        scored: 0,
    })
}

/// Additive damped Holt-Winters with season `m` fitted to `window` (at least two seasons):
/// level and season started from the means of up to three seasons, no trend; every grid
/// point scored by its one-step squared error after the first season; the best one's state
/// at the window's end.
pub fn fit_winters(window: &[f64], m: usize) -> Option<Smoother> {
    let n = window.len();
    if m < 2 || n < 2 * m {
        return None;
    }
    let seasons = (n / m).min(3);
    let means: Vec<f64> = (0..seasons)
        .map(|j| window[j * m..(j + 1) * m].iter().sum::<f64>() / m as f64)
        .collect();
    let start: Vec<f64> = (0..m)
        .map(|k| {
            (0..seasons)
                .map(|j| window[j * m + k] - means[j])
                .sum::<f64>()
                / seasons as f64
        })
        .collect();
    let grid = Grid::seasonal();
    let g_len = grid.len();
    let mut level = vec![means[0]; g_len];
    let mut trend = vec![0.0; g_len];
    let mut sse = vec![0.0; g_len];
    // Season slot k of grid point g at k * g_len + g: the inner loop reads one slot of
    // every grid point, contiguously.
    let mut season: Vec<f64> = start
        .iter()
        .flat_map(|&s| std::iter::repeat_n(s, g_len))
        .collect();
    for (i, &y) in window.iter().enumerate() {
        let k = i % m;
        let counted = if i >= m { 1.0 } else { 0.0 };
        let slots = &mut season[k * g_len..(k + 1) * g_len];
        for g in 0..g_len {
            let damped = grid.phi[g] * trend[g];
            let error = y - (level[g] + damped + slots[g]);
            sse[g] += counted * error * error;
            level[g] += damped + grid.alpha[g] * error;
            trend[g] = damped + grid.beta[g] * error;
            slots[g] += grid.gamma[g] * error;
        }
    }
    let best = Grid::best(&sse)?;
    Some(Smoother {
        params: grid.params(best),
        level: level[best],
        trend: trend[best],
        season: (0..m).map(|k| season[k * g_len + best]).collect(),
        phase: n % m,
        scale: 0.0,
        scored: 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holt_follows_a_line_and_damps_its_trend() {
        let line: Vec<f64> = (0..200).map(|i| 3.0 + 0.5 * i as f64).collect();
        let state = fit_damped(&line).unwrap();
        let params = state.params;
        let mut out = Vec::new();
        state.forecast(3, &mut out);
        assert!((out[0] - 103.0).abs() < 0.5, "{out:?} with {params:?}");
        assert!(out[2] - out[1] <= out[1] - out[0] + 1e-9, "damped");
    }

    #[test]
    fn a_spike_moves_the_level_only_so_far_and_a_new_level_is_followed() {
        let flat: Vec<f64> = (0..300).map(|i| 10.0 + (i % 3) as f64 * 0.1).collect();
        let mut state = fit_damped(&flat).unwrap();
        for i in 0..50 {
            state.update(10.0 + (i % 3) as f64 * 0.1);
        }
        let before = state.one_step();
        state.update(1000.0);
        assert!(
            (state.one_step() - before).abs() < 1.0,
            "{}",
            state.one_step()
        );
        // A step that stays is taken up (the clipping limit grows with the errors it makes).
        for _ in 0..150 {
            state.update(50.0);
        }
        assert!(
            (state.one_step() - 50.0).abs() < 1.0,
            "{}",
            state.one_step()
        );
    }

    #[test]
    fn holt_winters_repeats_the_season() {
        let season = [5.0, 9.0, 2.0, 7.0];
        let series: Vec<f64> = (0..400).map(|i| 10.0 + season[i % 4]).collect();
        let state = fit_winters(&series, 4).unwrap();
        let mut out = Vec::new();
        state.forecast(8, &mut out);
        for (h, value) in out.iter().enumerate() {
            assert!(
                (value - (10.0 + season[(400 + h) % 4])).abs() < 0.2,
                "h={} {out:?}",
                h + 1
            );
        }
    }
}
