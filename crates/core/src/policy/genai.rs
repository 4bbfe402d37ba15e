//! `[genai]`: what model tokens cost, so that token counts become money per agent, pool and
//! task.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::domain::names::glob;

/// Model prices and the currency they are in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GenAiPolicy {
    /// The currency prices are in, as shown beside costs (`USD`, `EUR`, ...).
    #[serde(default = "default_currency")]
    pub currency: String,
    /// Prices per model; the first entry that matches a call's provider and model wins.
    #[serde(default)]
    pub prices: Vec<ModelPrice>,
}

/// The price of one model (or of every model a pattern matches).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ModelPrice {
    /// The provider (`gen_ai.provider.name`: `openai`, `anthropic`, ...); absent matches any.
    #[serde(default)]
    pub provider: Option<String>,
    /// The model name; `*` stands for any run of characters (`gpt-4o-*` matches dated
    /// versions).
    pub model: String,
    /// Price of a million input (prompt) tokens.
    pub input_per_million: f64,
    /// Price of a million output (completion) tokens.
    pub output_per_million: f64,
}

/// The model a pool's agents call, by provider and name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PoolModel {
    /// The provider (`openai`, `anthropic`, ...), matched against `genai.prices`.
    #[serde(default)]
    pub provider: Option<String>,
    /// The model name, as the price table's patterns match it.
    pub name: String,
}

/// How the controller may change a pool's concurrency (tasks or model calls each agent runs
/// at once) when its model provider throttles it: lower it, never below `min`, and raise it
/// back, one at a time, to `max` once the throttling has stopped.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConcurrencyPolicy {
    /// The concurrency the agents run at normally, and the most the controller sets.
    pub max: u32,
    /// The least the controller sets.
    #[serde(default = "default_min_concurrency")]
    pub min: u32,
    /// A pool whose refused share of model calls (or tasks) for rate limits is at least this,
    /// percent, counts as throttled: no scale-out, and its concurrency comes down.
    #[serde(default = "default_throttle_percent")]
    pub throttle_percent: f64,
    /// After this long without throttling, seconds, the concurrency goes up by one (and again
    /// after as long each time) until it is back at `max`.
    #[serde(default = "default_recover_secs")]
    pub recover_secs: u64,
}

const fn default_min_concurrency() -> u32 {
    1
}

/// The throttled share at which any pool, with or without a `concurrency` section, stops
/// scaling out on its load, percent.
pub const DEFAULT_THROTTLE_PERCENT: f64 = 5.0;

const fn default_throttle_percent() -> f64 {
    DEFAULT_THROTTLE_PERCENT
}

const fn default_recover_secs() -> u64 {
    60
}

/// What a pool may spend on models: money an hour or a day (in `genai.currency`), tokens a
/// second. Each is optional; burn-rate alerts watch each one set.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BudgetPolicy {
    /// Money an hour.
    #[serde(default)]
    pub cost_per_hour: Option<f64>,
    /// Money a day.
    #[serde(default)]
    pub cost_per_day: Option<f64>,
    /// Input and output tokens a second, all agents together.
    #[serde(default)]
    pub tokens_per_sec: Option<f64>,
}

impl BudgetPolicy {
    /// The money a second the budget allows: the stricter of the hourly and daily budgets.
    pub fn money_per_sec(&self) -> Option<f64> {
        let hourly = self.cost_per_hour.map(|c| c / 3600.0);
        let daily = self.cost_per_day.map(|c| c / 86_400.0);
        match (hourly, daily) {
            (Some(h), Some(d)) => Some(h.min(d)),
            (one, other) => one.or(other),
        }
    }
}

fn default_currency() -> String {
    "USD".into()
}

impl Default for GenAiPolicy {
    fn default() -> Self {
        GenAiPolicy {
            currency: default_currency(),
            prices: Vec::new(),
        }
    }
}

// === impl GenAiPolicy ===

impl GenAiPolicy {
    /// The price of `model` from `provider` (when known): the first entry whose model pattern
    /// matches and whose provider is absent or the same.
    pub fn price(&self, provider: Option<&str>, model: &str) -> Option<&ModelPrice> {
        self.prices.iter().find(|price| {
            glob(&price.model, model)
                && match (&price.provider, provider) {
                    (None, _) => true,
                    (Some(wanted), Some(given)) => wanted.eq_ignore_ascii_case(given),
                    (Some(_), None) => false,
                }
        })
    }

    /// The price of the model `pool` names, when it names one and a price matches.
    pub fn pool_price(&self, pool: Option<&PoolModel>) -> Option<&ModelPrice> {
        pool.and_then(|m| self.price(m.provider.as_deref(), &m.name))
    }

    /// What `tokens_in` and `tokens_out` of `model` cost, or `None` when no price matches.
    pub fn cost(
        &self,
        provider: Option<&str>,
        model: &str,
        tokens_in: f64,
        tokens_out: f64,
    ) -> Option<f64> {
        self.price(provider, model).map(|price| {
            (tokens_in * price.input_per_million + tokens_out * price.output_per_million) / 1e6
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn price(provider: Option<&str>, model: &str, input: f64, output: f64) -> ModelPrice {
        ModelPrice {
            provider: provider.map(Into::into),
            model: model.into(),
            input_per_million: input,
            output_per_million: output,
        }
    }

    #[test]
    fn the_first_matching_entry_prices_the_tokens() {
        let policy = GenAiPolicy {
            currency: "USD".into(),
            prices: vec![
                price(Some("openai"), "gpt-4o-mini*", 0.15, 0.6),
                price(Some("openai"), "gpt-4o*", 2.5, 10.0),
                price(None, "llama-*", 0.1, 0.1),
            ],
        };
        let cost = policy.cost(Some("openai"), "gpt-4o-2024-08-06", 1_000_000.0, 100_000.0);
        assert_eq!(cost, Some(2.5 + 1.0));
        let mini = policy.cost(Some("OpenAI"), "gpt-4o-mini", 2_000_000.0, 0.0);
        assert_eq!(mini, Some(0.3));
        assert_eq!(policy.cost(Some("azure"), "gpt-4o", 1.0, 1.0), None);
        assert_eq!(
            policy.cost(None, "gpt-4o", 1.0, 1.0),
            None,
            "the entry names a provider"
        );
        assert_eq!(policy.cost(None, "llama-3-70b", 1e6, 1e6), Some(0.2));
    }
}
