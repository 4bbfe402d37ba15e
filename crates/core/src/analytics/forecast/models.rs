//! Exponential smoothing models: Holt's damped trend and additive Holt-Winters (damped), with
//! their state updated in O(1) per point and parameters fitted by minimising the one-step
//! squared error over a trailing window.

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
}

impl Smoother {
    /// Initialises on `history` (at least two points, or two seasons with a season).
    pub fn init(params: Params, history: &[f64], season_length: usize) -> Option<Smoother> {
        let m = season_length;
        if m >= 2 {
            if history.len() < 2 * m {
                return None;
            }
            let first: f64 = history[..m].iter().sum::<f64>() / m as f64;
            let second: f64 = history[m..2 * m].iter().sum::<f64>() / m as f64;
            let season = history[..m].iter().map(|y| y - first).collect();
            Some(Smoother {
                params,
                level: first,
                trend: (second - first) / m as f64,
                season,
                phase: 0,
            })
        } else {
            if history.len() < 2 {
                return None;
            }
            Some(Smoother {
                params,
                level: history[0],
                trend: history[1] - history[0],
                season: Vec::new(),
                phase: 0,
            })
        }
    }

    /// The one-step forecast before seeing the next point.
    pub fn one_step(&self) -> f64 {
        let seasonal = self.season.get(self.phase).copied().unwrap_or(0.0);
        self.level + self.params.phi * self.trend + seasonal
    }

    /// Folds in `y`.
    pub fn update(&mut self, y: f64) {
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

/// Runs a model over `window` from its start; returns the one-step squared error over the
/// part after initialisation and the final state.
pub fn run(params: Params, window: &[f64], season_length: usize) -> Option<(f64, Smoother)> {
    let skip = if season_length >= 2 {
        2 * season_length
    } else {
        2
    };
    let mut smoother = Smoother::init(params, window, season_length)?;
    // Replay the initialisation span so the state is at its end.
    for &y in &window[..skip] {
        smoother.update(y);
    }
    let mut sse = 0.0;
    for &y in &window[skip..] {
        let error = y - smoother.one_step();
        sse += error * error;
        smoother.update(y);
    }
    Some((sse, smoother))
}

/// The parameters a grid search finds best on `window`, with the state they end in.
pub fn fit(window: &[f64], season_length: usize) -> Option<(Params, Smoother)> {
    const ALPHAS: [f64; 6] = [0.05, 0.1, 0.2, 0.35, 0.5, 0.8];
    const BETAS: [f64; 4] = [0.005, 0.02, 0.05, 0.15];
    const PHIS: [f64; 3] = [0.8, 0.9, 0.98];
    const GAMMAS: [f64; 3] = [0.05, 0.15, 0.35];
    let gammas: &[f64] = if season_length >= 2 { &GAMMAS } else { &[0.0] };
    let mut best: Option<(f64, Params, Smoother)> = None;
    for &alpha in &ALPHAS {
        for &beta in &BETAS {
            for &phi in &PHIS {
                for &gamma in gammas {
                    let params = Params {
                        alpha,
                        beta,
                        phi,
                        gamma,
                    };
                    let (sse, state) = run(params, window, season_length)?;
                    if sse.is_finite() && best.as_ref().is_none_or(|(b, _, _)| sse < *b) {
                        best = Some((sse, params, state));
                    }
                }
            }
        }
    }
    best.map(|(_, params, state)| (params, state))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holt_follows_a_line_and_damps_its_trend() {
        let line: Vec<f64> = (0..200).map(|i| 3.0 + 0.5 * i as f64).collect();
        let (params, state) = fit(&line, 0).unwrap();
        let mut out = Vec::new();
        state.forecast(3, &mut out);
        assert!((out[0] - 103.0).abs() < 0.5, "{out:?} with {params:?}");
        assert!(out[2] - out[1] <= out[1] - out[0] + 1e-9, "damped");
    }

    #[test]
    fn holt_winters_repeats_the_season() {
        let season = [5.0, 9.0, 2.0, 7.0];
        let series: Vec<f64> = (0..400).map(|i| 10.0 + season[i % 4]).collect();
        let (_, state) = fit(&series, 4).unwrap();
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
