//! Streaming load forecasts, after the prototype in `docs/forecaster-prototype.md`: Holt's
//! damped trend and additive Holt-Winters with the season found by autocorrelation, their
//! parameters fitted by a grid search of the one-step error on a trailing window, and the
//! seasonal-naive and naive forecasts; for each horizon on its own, the model whose recent
//! out-of-sample error at that horizon is lowest.
//!
//! Between refits each model's state is updated in O(1) per point; refits (grid search,
//! season detection) happen at the end of the warm-up, after twice the warm-up, and then
//! every `refit_every` points.

mod models;
mod season;

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

pub use models::{Params, Smoother, fit_damped, fit_winters};
pub use season::{detect_season, linear_trend};

/// The knobs of the forecaster; one set serves every series.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, schemars::JsonSchema)]
pub struct ForecastConfig {
    /// Points before the first forecast (and the first refit).
    pub warm_up: usize,
    /// Points between refits after the second.
    pub refit_every: usize,
    /// Points of history the refit and season detection look at.
    pub window: usize,
    /// Longest season considered, points.
    pub max_season: usize,
    /// Weight of each new error in a model's running out-of-sample error at a horizon.
    pub error_weight: f64,
}

impl Default for ForecastConfig {
    fn default() -> Self {
        ForecastConfig {
            warm_up: 32,
            refit_every: 512,
            window: 2000,
            max_season: 1000,
            error_weight: 0.005,
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
    /// The last value.
    Naive,
}

/// The models in the order ties go.
const MODELS: [Model; 4] = [
    Model::DampedHolt,
    Model::HoltWinters,
    Model::SeasonalNaive,
    Model::Naive,
];

/// A model's running absolute error at one horizon: an exponentially weighted sum of the
/// errors and of their count, so that the mean is unbiased from the first error on.
#[derive(Debug, Clone, Copy, Default)]
struct Tracker {
    sum: f64,
    count: f64,
}

impl Tracker {
    fn add(&mut self, error: f64, weight: f64) {
        self.sum = (1.0 - weight) * self.sum + error;
        self.count = (1.0 - weight) * self.count + 1.0;
    }

    fn mean(&self) -> Option<f64> {
        (self.count > 0.0).then(|| self.sum / self.count)
    }
}

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
    /// What each model forecast at each of the last `horizon` points (newest last; `None`
    /// where it made none), to score against what arrives.
    pending: [VecDeque<Option<Vec<f64>>>; 4],
    /// Each model's running error at each horizon.
    errors: [Vec<Tracker>; 4],
    /// The model chosen at each horizon for the latest forecast.
    chosen: Vec<Model>,
}

impl Forecaster {
    /// A forecaster of `horizon` steps.
    pub fn new(config: ForecastConfig, horizon: usize) -> Self {
        let horizon = horizon.max(1);
        Forecaster {
            config,
            horizon,
            history: VecDeque::with_capacity(config.window + 1),
            seen: 0,
            season: 0,
            holt: None,
            winters: None,
            pending: Default::default(),
            errors: std::array::from_fn(|_| vec![Tracker::default(); horizon]),
            chosen: Vec::new(),
        }
    }

    /// The season length in use (0: none).
    pub fn season(&self) -> usize {
        self.season
    }

    /// The model chosen for the longest horizon of the latest forecast (damped Holt before
    /// the first).
    pub fn model(&self) -> Model {
        self.chosen.last().copied().unwrap_or(Model::DampedHolt)
    }

    /// The recent mean absolute error of the chosen models, averaged over the horizons,
    /// once they have been scored.
    pub fn error(&self) -> Option<f64> {
        let errors: Vec<f64> = self
            .chosen
            .iter()
            .enumerate()
            .filter_map(|(h, model)| self.errors[index(*model)][h].mean())
            .collect();
        (!errors.is_empty()).then(|| errors.iter().sum::<f64>() / errors.len() as f64)
    }

    /// Folds in `y`; returns the forecasts for the next `horizon` points once warmed up.
    pub fn update(&mut self, y: f64) -> Option<Vec<f64>> {
        self.score_pending(y);
        if self.history.len() == self.config.window {
            self.history.pop_front();
        }
        self.history.push_back(y);
        self.seen += 1;
        let warm_up = self.config.warm_up.max(2);
        let due = self.seen == warm_up
            || self.seen == 2 * warm_up
            || (self.seen > warm_up && self.seen.is_multiple_of(self.config.refit_every.max(1)));
        if due {
            self.refit();
        } else {
            if let Some(holt) = self.holt.as_mut() {
                holt.update(y);
            }
            if let Some(winters) = self.winters.as_mut() {
                winters.update(y);
            }
        }
        if self.seen < warm_up {
            return None;
        }
        let forecasts: [Option<Vec<f64>>; 4] = MODELS.map(|model| self.forecast_with(model));
        let mut out = Vec::with_capacity(self.horizon);
        self.chosen.clear();
        for h in 0..self.horizon {
            let model = self.choose(&forecasts, h);
            let value = forecasts[index(model)].as_ref().map_or(y, |f| f[h]);
            out.push(value);
            self.chosen.push(model);
        }
        for (queue, forecast) in self.pending.iter_mut().zip(forecasts) {
            if queue.len() == self.horizon {
                queue.pop_front();
            }
            queue.push_back(forecast);
        }
        Some(out)
    }

    /// The model with the lowest recent error at horizon `h` among those that forecast now;
    /// damped Holt (or, before it exists, the naive forecast) while none has been scored.
    fn choose(&self, forecasts: &[Option<Vec<f64>>; 4], h: usize) -> Model {
        let mut best: Option<(Model, f64)> = None;
        for (i, model) in MODELS.iter().enumerate() {
            if forecasts[i].is_none() {
                continue;
            }
            if let Some(error) = self.errors[i][h].mean()
                && best.is_none_or(|(_, e)| error < e)
            {
                best = Some((*model, error));
            }
        }
        match best {
            Some((model, _)) => model,
            None if self.holt.is_some() => Model::DampedHolt,
            None => Model::Naive,
        }
    }

    fn forecast_with(&self, model: Model) -> Option<Vec<f64>> {
        let mut out = Vec::with_capacity(self.horizon);
        match model {
            Model::DampedHolt => self.holt.as_ref()?.forecast(self.horizon, &mut out),
            Model::HoltWinters => self.winters.as_ref()?.forecast(self.horizon, &mut out),
            Model::SeasonalNaive => {
                let m = self.season;
                if m < 2 || self.history.len() < m {
                    return None;
                }
                let start = self.history.len() - m;
                out.extend((0..self.horizon).map(|h| self.history[start + h % m]));
            }
            Model::Naive => {
                let last = *self.history.back()?;
                out.resize(self.horizon, last);
            }
        }
        Some(out)
    }

    /// Scores what each model forecast for this point at each horizon against `y`.
    fn score_pending(&mut self, y: f64) {
        let weight = self.config.error_weight;
        for (queue, trackers) in self.pending.iter().zip(self.errors.iter_mut()) {
            // The newest forecast, made one point ago, predicted this point at horizon 1;
            // the one before it at horizon 2, and so on.
            for (age, forecast) in queue.iter().rev().enumerate() {
                if let Some(forecast) = forecast {
                    trackers[age].add((forecast[age] - y).abs(), weight);
                }
            }
        }
    }

    fn refit(&mut self) {
        let window: Vec<f64> = self.history.iter().copied().collect();
        self.season = detect_season(&window, self.config.max_season);
        self.holt = fit_damped(&window);
        self.winters = if self.season >= 2 {
            fit_winters(&window, self.season)
        } else {
            None
        };
    }
}

/// A model's place in [`MODELS`].
fn index(model: Model) -> usize {
    MODELS.iter().position(|m| *m == model).unwrap_or(0)
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
        let early: Vec<bool> = (0..31)
            .map(|i| forecaster.update(i as f64).is_some())
            .collect();
        assert!(early.iter().all(|some| !some));
        assert!(forecaster.update(31.0).is_some());
    }

    #[test]
    fn each_horizon_takes_the_model_that_has_done_best_there() {
        // A random walk: nothing beats the last value, at any horizon.
        let mut state: u64 = 0x2545_F491_4F6C_DD1D;
        let mut value = 100.0;
        let mut forecaster = Forecaster::new(ForecastConfig::default(), 6);
        let mut last = None;
        for _ in 0..3000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            value += (state % 2001) as f64 / 1000.0 - 1.0;
            last = forecaster.update(value);
        }
        let forecast = last.unwrap();
        // Whatever each horizon chose, its forecast stays near the last value.
        for f in &forecast {
            assert!((f - value).abs() < 3.0, "{forecast:?} from {value}");
        }
        assert!(forecaster.error().unwrap() > 0.0);
    }
}
