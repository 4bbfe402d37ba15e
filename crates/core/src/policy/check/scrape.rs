//! Checks of the Prometheus scrape settings: URLs that are http(s), agents that are unique
//! and well formed, pools that exist, mappings whose names and readings make sense, and
//! pools that scale on a PromQL input that is declared.

use std::collections::HashSet;

use super::{Problems, not_found};
use crate::policy::model::Policy;
use crate::policy::scrape::{MetricMapping, ReadAs};

pub(super) fn check_scrape(policy: &Policy, problems: &mut Problems) {
    let ingest = &policy.ingest;
    let mut agents = HashSet::new();
    for (index, target) in ingest.scrape.iter().enumerate() {
        let item = format!("[{index}]");
        let at = |field: &'static str| ["ingest", "scrape", item.as_str(), field];
        let url = &target.url;
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            problems.error(
                &at("url"),
                format!("{url:?} is not an http:// or https:// URL"),
            );
        }
        if let Err(reason) = crate::domain::names::check_agent(&target.agent) {
            problems.error(&at("agent"), reason.to_string());
        } else if !agents.insert(target.agent.as_str()) {
            problems.error(
                &at("agent"),
                format!("agent {:?} is scraped by two targets", target.agent),
            );
        }
        let pool = target.pool.as_ref().unwrap_or(&ingest.default_pool);
        if !policy.pools.contains_key(pool) {
            problems.error(&at("pool"), not_found("pool", pool, policy.pools.keys()));
        }
        if !(1..=60_000).contains(&target.timeout_ms) {
            problems.error(
                &at("timeout_ms"),
                format!("{} is outside 1-60000 ms", target.timeout_ms),
            );
        }
        if target.metrics.is_empty() {
            problems.error(&at("metrics"), "no metric is mapped".into());
        }
        check_mappings(
            &["ingest", "scrape", item.as_str()],
            &target.metrics,
            problems,
        );
    }
    for (name, pool) in &ingest.scrape_pools {
        let at = ["ingest", "scrape_pools", name.as_str()];
        match policy.pools.get(name) {
            None => problems.error(&at, not_found("pool", name, policy.pools.keys())),
            Some(found) if found.observe_only() => problems.warning(
                &at,
                format!("pool {name:?} has no driver: no agent endpoint to scrape"),
            ),
            Some(_) => {}
        }
        if !pool.path.starts_with('/') {
            problems.error(
                &[&at[..], &["path"]].concat(),
                format!("{:?} must start with /", pool.path),
            );
        }
        if !(1..=60_000).contains(&pool.timeout_ms) {
            problems.error(
                &[&at[..], &["timeout_ms"]].concat(),
                format!("{} is outside 1-60000 ms", pool.timeout_ms),
            );
        }
        check_mappings(&at, &pool.metrics, problems);
    }
    let mut inputs = HashSet::new();
    for (index, query) in ingest.promql.iter().enumerate() {
        let item = format!("[{index}]");
        let at = |field: &'static str| ["ingest", "promql", item.as_str(), field];
        let server = &query.server;
        if !(server.starts_with("http://") || server.starts_with("https://")) {
            problems.error(
                &at("server"),
                format!("{server:?} is not an http:// or https:// URL"),
            );
        }
        if !policy.pools.contains_key(&query.pool) {
            problems.error(
                &at("pool"),
                not_found("pool", &query.pool, policy.pools.keys()),
            );
        }
        if let Err(reason) = crate::domain::names::check_metric(&query.input) {
            problems.error(&at("input"), reason.to_string());
        } else if !inputs.insert((query.pool.as_str(), query.input.as_str())) {
            problems.error(
                &at("input"),
                format!("pool {:?} reads input {:?} twice", query.pool, query.input),
            );
        }
        if query.query.trim().is_empty() {
            problems.error(&at("query"), "the query is empty".into());
        }
    }
    check_scale_on(policy, problems);
}

/// A pool that scales on an input reads it with PromQL, and one agent carries some of it.
fn check_scale_on(policy: &Policy, problems: &mut Problems) {
    for (name, pool) in &policy.pools {
        let Some(scale_on) = &pool.scale_on else {
            continue;
        };
        let at = |field: &'static str| ["pools", name.as_str(), "scale_on", field];
        let declared: Vec<&String> = policy
            .ingest
            .promql
            .iter()
            .filter(|q| &q.pool == name)
            .map(|q| &q.input)
            .collect();
        if !declared.contains(&&scale_on.input) {
            problems.error(
                &at("input"),
                format!(
                    "{}: declare it with an [[ingest.promql]] entry of pool {name:?}",
                    not_found("input", &scale_on.input, declared.iter().copied())
                ),
            );
        }
        let target = scale_on.target_per_agent;
        if !(target.is_finite() && target > 0.0) {
            problems.error(
                &at("target_per_agent"),
                format!("{target} must be a finite number above 0"),
            );
        }
        if pool.observe_only() {
            problems.warning(
                &["pools", name.as_str(), "scale_on"],
                format!("pool {name:?} has no driver: it is never scaled"),
            );
        }
    }
}

fn check_mappings(at: &[&str], mappings: &[MetricMapping], problems: &mut Problems) {
    let mut targets = HashSet::new();
    for (index, mapping) in mappings.iter().enumerate() {
        let item = format!("[{index}]");
        let path = |field: &'static str| [at, &["metrics", item.as_str(), field]].concat();
        for name in std::iter::once(&mapping.from).chain(&mapping.over) {
            if crate::domain::names::check_metric(name).is_err() {
                problems.error(
                    &path("from"),
                    format!("{name:?} is not a Prometheus metric name"),
                );
            }
        }
        if let Err(reason) = crate::domain::names::check_metric(&mapping.to) {
            problems.error(&path("to"), reason.to_string());
        } else if !targets.insert(mapping.to.as_str()) {
            problems.error(
                &path("to"),
                format!("{:?} is mapped twice for the same agent", mapping.to),
            );
        }
        if mapping.read == ReadAs::Quantile && !(mapping.quantile > 0.0 && mapping.quantile < 1.0) {
            problems.error(
                &path("quantile"),
                format!("{} is outside (0, 1)", mapping.quantile),
            );
        }
        if mapping.read == ReadAs::Ratio && mapping.over.is_empty() {
            problems.error(
                &path("over"),
                "read = \"ratio\" needs the counters of the denominator".into(),
            );
        }
        if !mapping.scale.is_finite() || mapping.scale == 0.0 {
            problems.error(
                &path("scale"),
                format!("{} must be a finite, non-zero factor", mapping.scale),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::policy::load::load_bare;

    const POOLS: &str = r#"
[pools.external]
min_agents = 0
driver = { type = "none" }

[pools.worker]
min_agents = 1
"#;

    /// Loads the pools above plus `text`; the error (or warning) lines it gets.
    fn problems(text: &str) -> Vec<String> {
        let text = format!("{POOLS}{text}");
        match load_bare("p.toml", &text) {
            Ok(loaded) => loaded.warnings.iter().map(ToString::to_string).collect(),
            Err(error) => error.errors.iter().map(ToString::to_string).collect(),
        }
    }

    #[test]
    fn good_targets_load_with_their_defaults() {
        let text = format!(
            "{POOLS}{}",
            r#"
[[ingest.scrape]]
url = "http://127.0.0.1:9100/metrics"
agent = "node-1"
metrics = [{ from = "node_load1", to = "load1" }]

[ingest.scrape_pools.worker]
"#
        );
        let loaded = load_bare("p.toml", &text).unwrap();
        assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
        let ingest = &loaded.policy.ingest;
        assert_eq!(ingest.scrape[0].timeout_ms, 2000);
        assert_eq!(
            ingest.scrape[0].metrics[0].read,
            crate::policy::ReadAs::Auto
        );
        let pool = &ingest.scrape_pools["worker"];
        assert_eq!(pool.path, "/metrics");
        assert_eq!(pool.metrics, crate::policy::bundled_worker_metrics());
    }

    #[test]
    fn bad_targets_and_mappings_are_named() {
        let got = problems(
            r#"
[[ingest.scrape]]
url = "ftp://x/metrics"
agent = "host"
pool = "nowhere"
timeout_ms = 0
metrics = []

[[ingest.scrape]]
url = "http://a/metrics"
agent = "a-1"
metrics = [
  { from = "9x", to = "ok" },
  { from = "y", to = "bad name" },
  { from = "z", to = "ok", read = "quantile", quantile = 1.5 },
  { from = "r", to = "r", read = "ratio", scale = 0 },
]

[[ingest.scrape]]
url = "http://b/metrics"
agent = "a-1"
metrics = [{ from = "up", to = "up" }]

[ingest.scrape_pools.nope]
path = "metrics"
"#,
        );
        let expected = [
            "ingest.scrape[0].url: \"ftp://x/metrics\" is not an http:// or https:// URL",
            "ingest.scrape[0].agent: agent id \"host\" is reserved",
            "ingest.scrape[0].pool: no pool named \"nowhere\"",
            "ingest.scrape[0].timeout_ms: 0 is below the minimum 1",
            "ingest.scrape[0].metrics: no metric is mapped",
            "ingest.scrape[1].metrics[0].from: \"9x\" is not a Prometheus metric name",
            "ingest.scrape[1].metrics[1].to: metric name \"bad name\"",
            "ingest.scrape[1].metrics[2].to: \"ok\" is mapped twice",
            "ingest.scrape[1].metrics[2].quantile: 1.5 is outside (0, 1)",
            "ingest.scrape[1].metrics[3].over: read = \"ratio\" needs",
            "ingest.scrape[1].metrics[3].scale: 0 must be a finite, non-zero factor",
            "ingest.scrape[2].agent: agent \"a-1\" is scraped by two targets",
            "ingest.scrape_pools.nope: no pool named \"nope\"",
            "ingest.scrape_pools.nope.path: \"metrics\" must start with /",
        ];
        assert_eq!(got.len(), expected.len(), "{got:#?}");
        for (line, words) in got.iter().zip(expected) {
            assert!(
                line.contains(words),
                "{line:?} lacks {words:?}\nall: {got:#?}"
            );
        }
    }

    #[test]
    fn scraping_an_observe_only_pool_is_a_warning() {
        let got = problems("[ingest.scrape_pools.external]\n");
        assert_eq!(got.len(), 1, "{got:?}");
        assert!(got[0].contains("has no driver"), "{got:?}");
    }

    #[test]
    fn a_pool_scales_only_on_a_declared_input_with_a_positive_target() {
        let input = r#"
[[ingest.promql]]
server = "http://127.0.0.1:9090"
pool = "worker"
input = "rps"
query = "sum(rate(x[1m]))"
"#;
        let good =
            format!("{POOLS}scale_on = {{ input = \"rps\", target_per_agent = 50.0 }}\n{input}");
        let loaded = load_bare("p.toml", &good).unwrap();
        assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
        let scale_on = loaded.policy.pools["worker"].scale_on.clone().unwrap();
        assert_eq!(
            (scale_on.input.as_str(), scale_on.target_per_agent),
            ("rps", 50.0)
        );

        let bad = format!("{POOLS}scale_on = {{ input = \"rsp\", target_per_agent = 0 }}\n{input}");
        let got = problems(&bad[POOLS.len()..]);
        // Both on line 8 of the file, where `scale_on` is set.
        let expected = [
            "pools.worker.scale_on.input: no input named \"rsp\" (defined: rps); did you mean `rps`?: declare it",
            "pools.worker.scale_on.target_per_agent: 0 must be a finite number above 0",
        ];
        assert_eq!(got.len(), expected.len(), "{got:#?}");
        for (line, words) in got.iter().zip(expected) {
            assert!(line.starts_with("p.toml:8:"), "{line:?}");
            assert!(line.contains(words), "{line:?} lacks {words:?}");
        }

        let got = problems(
            "[pools.external.scale_on]\ninput = \"queue\"\ntarget_per_agent = 5\n\
             [[ingest.promql]]\nserver = \"http://p:9090\"\npool = \"external\"\n\
             input = \"queue\"\nquery = \"q\"\n",
        );
        assert_eq!(got.len(), 1, "{got:?}");
        assert!(
            got[0].contains("has no driver: it is never scaled"),
            "{got:?}"
        );
    }

    #[test]
    fn bad_promql_inputs_are_named() {
        let got = problems(
            r#"
[[ingest.promql]]
server = "127.0.0.1:9090"
pool = "wroker"
input = "rps"
query = " "

[[ingest.promql]]
server = "http://127.0.0.1:9090"
pool = "worker"
input = "rps"
query = "sum(rate(x[1m]))"

[[ingest.promql]]
server = "http://127.0.0.1:9090"
pool = "worker"
input = "rps"
query = "sum(rate(y[1m]))"
"#,
        );
        let expected = [
            "ingest.promql[0].server: \"127.0.0.1:9090\" is not an http:// or https:// URL",
            "ingest.promql[0].pool: no pool named \"wroker\"",
            "ingest.promql[0].query: the query is empty",
            "ingest.promql[2].input: pool \"worker\" reads input \"rps\" twice",
        ];
        assert_eq!(got.len(), expected.len(), "{got:#?}");
        for (line, words) in got.iter().zip(expected) {
            assert!(
                line.contains(words),
                "{line:?} lacks {words:?}\nall: {got:#?}"
            );
        }
    }
}
