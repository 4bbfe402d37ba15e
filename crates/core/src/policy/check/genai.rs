//! Checks of `[genai]` (a currency, and prices that are numbers a bill can hold) and of each
//! pool's `concurrency` bounds.

use super::Problems;
use crate::policy::model::Policy;

pub(super) fn check_genai(policy: &Policy, problems: &mut Problems) {
    let genai = &policy.genai;
    if genai.currency.trim().is_empty() {
        problems.error(&["genai", "currency"], "the currency is empty".into());
    }
    for (index, price) in genai.prices.iter().enumerate() {
        let item = format!("[{index}]");
        let at = |field: &'static str| ["genai", "prices", item.as_str(), field];
        if price.model.trim().is_empty() {
            problems.error(&at("model"), "the model is empty (`*` matches any)".into());
        }
        for (field, value) in [
            ("input_per_million", price.input_per_million),
            ("output_per_million", price.output_per_million),
        ] {
            if !value.is_finite() || value < 0.0 {
                problems.error(
                    &at(field),
                    format!("{value} is not a price: a finite number, 0 or more"),
                );
            }
        }
        let shadowed_by = genai.prices[..index].iter().position(|earlier| {
            earlier.model == price.model
                && (earlier.provider.is_none() || earlier.provider == price.provider)
        });
        if let Some(earlier) = shadowed_by {
            problems.warning(
                &at("model"),
                format!(
                    "genai.prices[{earlier}] matches every call this entry would: it never applies"
                ),
            );
        }
    }
}

pub(super) fn check_concurrency(policy: &Policy, problems: &mut Problems) {
    for (name, pool) in &policy.pools {
        if let Some(model) = &pool.model
            && policy.genai.pool_price(Some(model)).is_none()
        {
            problems.warning(
                &["pools", name.as_str(), "model", "name"],
                format!(
                    "no genai.prices entry matches {}{:?}: its tokens are counted, not priced",
                    model
                        .provider
                        .as_deref()
                        .map(|p| format!("{p} "))
                        .unwrap_or_default(),
                    model.name
                ),
            );
        }
        if !pool.equivalent_models.is_empty() && pool.model.is_none() {
            problems.error(
                &["pools", name.as_str(), "equivalent_models"],
                "equivalent to what? name the pool's `model` too".into(),
            );
        }
        if !pool.equivalent_models.is_empty()
            && matches!(
                pool.driver,
                crate::policy::DriverConfig::Kubernetes { .. } | crate::policy::DriverConfig::None
            )
        {
            problems.warning(
                &["pools", name.as_str(), "equivalent_models"],
                "this pool's driver cannot move one agent to another model (the process and \
                 http drivers can): its agents stay where they are"
                    .into(),
            );
        }
        if let Some(budget) = &pool.budget {
            let limits = [
                ("cost_per_hour", budget.cost_per_hour),
                ("cost_per_day", budget.cost_per_day),
                ("tokens_per_sec", budget.tokens_per_sec),
            ];
            for (field, value) in limits {
                if let Some(value) = value
                    && !(value.is_finite() && value > 0.0)
                {
                    problems.error(
                        &["pools", name.as_str(), "budget", field],
                        format!("{value} is not a budget: a finite number above 0"),
                    );
                }
            }
        }
        let Some(concurrency) = &pool.concurrency else {
            continue;
        };
        let at = |field: &'static str| ["pools", name.as_str(), "concurrency", field];
        if concurrency.min == 0 {
            problems.error(
                &at("min"),
                "0 tasks at once would stop the pool: at least 1".into(),
            );
        }
        if concurrency.max < concurrency.min {
            problems.error(
                &at("max"),
                format!("{} is below min {}", concurrency.max, concurrency.min),
            );
        }
        let percent = concurrency.throttle_percent;
        if !(percent > 0.0 && percent <= 100.0) {
            problems.error(
                &at("throttle_percent"),
                format!("{percent} is outside (0, 100]"),
            );
        }
        if pool.observe_only() {
            problems.warning(
                &at("max"),
                format!(
                    "pool {name} is observe-only: the controller never changes its concurrency"
                ),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::policy::load::load_bare;

    const PRICES: &str = r#"
[[genai.prices]]
provider = "openai"
model = "gpt-4o-mini*"
input_per_million = 0.15
output_per_million = 0.60
"#;

    #[test]
    fn a_pools_model_is_priced_or_warned_about_at_its_line() {
        let priced = format!(
            "{PRICES}\n[pools.coders]\nmin_agents = 0\n\
             model = {{ provider = \"openai\", name = \"gpt-4o-mini\" }}\n"
        );
        let loaded = load_bare("p.toml", &priced).unwrap();
        assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
        let model = loaded.policy.pools["coders"].model.as_ref();
        let price = loaded.policy.genai.pool_price(model).expect("priced");
        assert_eq!(price.input_per_million, 0.15);

        let unpriced = format!(
            "{PRICES}\n[pools.coders]\nmin_agents = 0\n\
             model = {{ provider = \"anthropic\", name = \"gpt-4o-mini\" }}\n"
        );
        let loaded = load_bare("p.toml", &unpriced).unwrap();
        let got: Vec<String> = loaded.warnings.iter().map(ToString::to_string).collect();
        assert_eq!(got.len(), 1, "{got:?}");
        assert!(
            got[0].contains("p.toml:10") && got[0].contains("counted, not priced"),
            "{got:?}"
        );
    }
}
