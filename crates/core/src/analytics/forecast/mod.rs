//! Streaming load forecasts: Holt's damped trend and additive Holt-Winters with the season
//! found by autocorrelation, parameters fitted by minimising one-step error on a trailing
//! window, and per series the model whose recent out-of-sample error is lowest.
//!
//! Between refits each model's state is updated in O(1) per point; refits (grid search of
//! the parameters, season detection) happen every `refit_every` points.

mod models;
mod season;

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

pub use models::{Params, Smoother, fit};
pub use season::{detect_season, linear_trend};

/// The knobs of the forecaster; one set serves every series.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, schemars::JsonSchema)]
pub struct ForecastConfig {
    /// Points before the first forecast.
    pub warm_up: usize,
    /// Points between refits.
    pub refit_every: usize,
    /// Points of history the refit and season detection look at.
    pub window: usize,
    /// Longest season considered, points.
    pub max_season: usize,
    /// Weight of each new error in a model's running out-of-sample error.
    pub error_weight: f64,
}

impl Default for ForecastConfig {
    fn default() -> Self {
        ForecastConfig {
            warm_up: 100,
            refit_every: 250,
            window: 2000,
            max_season: 700,
            error_weight: 0.02,
        }
    }
}

/// The candidate models.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Model {
    /// Holt's damped trend.
    DampedHolt,
    /// Additive Holt-Winters with damped trend.
    HoltWinters,
    /// The value one season ago.
    SeasonalNaive,
}

const MODELS: [Model; 3] = [Model::DampedHolt, Model::HoltWinters, Model::SeasonalNaive];

/// The streaming forecaster of one series.
#[derive(Debug, Clone)]
pub struct Forecaster {
    config: ForecastConfig,
    horizon: usize,
    history: VecDeque<f64>,
    seen: usize,
    season: usize,
    holt: Option<Smoother>,
    winters: Option<Smoother>,
    /// Forecasts each model made at recent points, oldest first, to score against arrivals.
    pending: [VecDeque<Vec<f64>>; 3],
    /// Running mean absolute error of each model over horizons 1..H.
    errors: [Option<f64>; 3],
    scratch: Vec<f64>,
}

impl Forecaster {
    /// A forecaster of `horizon` steps.
    pub fn new(config: ForecastConfig, horizon: usize) -> Self {
        Forecaster {
            config,
            horizon: horizon.max(1),
            history: VecDeque::with_capacity(config.window + 1),
            seen: 0,
            season: 0,
            holt: None,
            winters: None,
            pending: Default::default(),
            errors: [None; 3],
            scratch: Vec::new(),
        }
    }

    /// The season length in use (0: none).
    pub fn season(&self) -> usize {
        self.season
    }

    /// The model in use: the one with the lowest recent error.
    pub fn model(&self) -> Model {
        let mut best = (Model::DampedHolt, f64::INFINITY);
        for (model, error) in MODELS.iter().zip(&self.errors) {
            if let Some(error) = error
                && *error < best.1
                && self.available(*model)
            {
                best = (*model, *error);
            }
        }
        best.0
    }

    /// The recent mean absolute error of the model in use over horizons 1..H, once scored.
    pub fn error(&self) -> Option<f64> {
        let model = self.model();
        let index = MODELS.iter().position(|m| *m == model)?;
        self.errors[index]
    }

    fn available(&self, model: Model) -> bool {
        match model {
            Model::DampedHolt => self.holt.is_some(),
            Model::HoltWinters => self.winters.is_some(),
            Model::SeasonalNaive => self.season >= 2 && self.history.len() >= self.season,
        }
    }

    /// Folds in `y`; returns the forecasts for the next `horizon` points once warmed up.
    pub fn update(&mut self, y: f64) -> Option<Vec<f64>> {
        self.score_pending(y);
        if self.history.len() == self.config.window {
            self.history.pop_front();
        }
        self.history.push_back(y);
        self.seen += 1;
        if let Some(holt) = self.holt.as_mut() {
            holt.update(y);
        }
        if let Some(winters) = self.winters.as_mut() {
            winters.update(y);
        }
        let due = self.seen >= self.config.warm_up
            && (self.holt.is_none() || self.seen.is_multiple_of(self.config.refit_every));
        if due {
            self.refit();
        }
        // Nothing to forecast with before the first fit.
        self.holt.as_ref()?;
        for (index, model) in MODELS.iter().enumerate() {
            let forecast = self.forecast_with(*model);
            if let Some(forecast) = forecast {
                let queue = &mut self.pending[index];
                if queue.len() == self.horizon {
                    queue.pop_front();
                }
                queue.push_back(forecast);
            } else {
                self.pending[index].clear();
            }
        }
        self.forecast_with(self.model())
    }

    fn forecast_with(&mut self, model: Model) -> Option<Vec<f64>> {
        let mut out = std::mem::take(&mut self.scratch);
        match model {
            Model::DampedHolt => self.holt.as_ref()?.forecast(self.horizon, &mut out),
            Model::HoltWinters => self.winters.as_ref()?.forecast(self.horizon, &mut out),
            Model::SeasonalNaive => {
                let m = self.season;
                if m < 2 || self.history.len() < m {
                    return None;
                }
                out.clear();
                let start = self.history.len() - m;
                out.extend((0..self.horizon).map(|h| self.history[start + h % m]));
            }
        }
        Some(out)
    }

    /// Compares what each model forecast for this point at each horizon with `y`.
    fn score_pending(&mut self, y: f64) {
        let weight = self.config.error_weight;
        for (queue, error) in self.pending.iter().zip(self.errors.iter_mut()) {
            if queue.is_empty() {
                continue;
            }
            // The newest forecast made one step ago predicted this point at horizon 1, the
            // one before it at horizon 2, and so on.
            let mut total = 0.0;
            for (age, forecast) in queue.iter().rev().enumerate() {
                total += (forecast[age] - y).abs();
            }
            let mean = total / queue.len() as f64;
            *error = Some(match *error {
                Some(previous) => previous + weight * (mean - previous),
                None => mean,
            });
        }
    }

    fn refit(&mut self) {
        let window: Vec<f64> = self.history.iter().copied().collect();
        self.season = detect_season(&window, self.config.max_season);
        self.holt = fit(&window, 0).map(|(_, state)| state);
        self.winters = if self.season >= 2 {
            fit(&window, self.season).map(|(_, state)| state)
        } else {
            None
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seasonal_series_is_forecast_by_a_seasonal_model() {
        let shape = |i: usize| 50.0 + 20.0 * (i as f64 * std::f64::consts::TAU / 48.0).sin();
        let mut forecaster = Forecaster::new(ForecastConfig::default(), 12);
        let mut last = None;
        for i in 0..1500 {
            last = forecaster.update(shape(i));
        }
        assert_eq!(forecaster.season(), 48);
        assert_ne!(forecaster.model(), Model::DampedHolt);
        let forecast = last.unwrap();
        for (h, value) in forecast.iter().enumerate() {
            assert!(
                (value - shape(1500 + h)).abs() < 1.0,
                "h={} {value} vs {}",
                h + 1,
                shape(1500 + h)
            );
        }
    }

    #[test]
    fn nothing_is_forecast_while_warming_up() {
        let mut forecaster = Forecaster::new(ForecastConfig::default(), 3);
        let early: Vec<bool> = (0..99)
            .map(|i| forecaster.update(i as f64).is_some())
            .collect();
        assert!(early.iter().all(|some| !some));
        assert!(forecaster.update(99.0).is_some());
    }
}
