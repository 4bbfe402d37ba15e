//! The sections computed from the summed windows: key figures, agents, host, charts and
//! trends; the report put together.

use std::collections::BTreeMap;

use super::advice::{bottlenecks, opportunities};
use super::build::{ReportBuilder, WindowSum};
use super::kpis::{Scope, kpis};
use super::model::*;
use super::trend::fit_line;
use super::{HOUR_MS, events, summary};
use crate::domain::metric;

/// Builds the report from a finished builder.
pub(super) fn report(b: &ReportBuilder) -> Report {
    let spec = &b.spec;
    let end_ms = spec.window.until_ms.min(spec.generated_ms);
    let pools = pool_names(b);
    let mut by_pool: Vec<PoolKpis> = pools
        .iter()
        .map(|pool| pool_kpis(b, Scope::Pool(pool), pool))
        .collect();
    by_pool.sort_by(|a, b| worst_first(&a.current, &b.current).then_with(|| a.pool.cmp(&b.pool)));
    let mut kpi_rows = vec![pool_kpis(b, Scope::Fleet, "fleet")];
    kpi_rows.extend(by_pool);

    let mut agents: Vec<AgentKpis> = b
        .current
        .agents
        .keys()
        .map(|(id, pool)| AgentKpis {
            agent: id.clone(),
            pool: pool.clone(),
            kpis: kpis(&b.current, Scope::Agent(id, pool)),
            alerts_fired: fired_on(b, |a| a.agent == *id && a.pool == *pool),
        })
        .collect();
    agents.sort_by(|a, b| worst_first(&a.kpis, &b.kpis).then_with(|| a.agent.cmp(&b.agent)));

    let host = b
        .host
        .iter()
        .filter_map(|(name, m)| {
            Some(HostMetric {
                metric: name.clone(),
                mean: m.mean()?,
                max: m.max,
                p95: m.p95,
            })
        })
        .collect();

    let charts = charts(b, &pools);
    let trends = trends(b, &pools);
    let bottlenecks = bottlenecks(b, &agents, &charts);
    let alerts = events::alerts(spec.window, end_ms, &b.alerts, &b.log, b.silences.clone());
    let actions = events::actions(spec.window, end_ms, &b.log);
    let opportunities = opportunities(b, &charts, &alerts);
    let mut report = Report {
        period: spec.period,
        window: spec.window,
        previous: spec.window.before(),
        generated_ms: spec.generated_ms,
        pool: spec.pool.clone(),
        currency: spec.currency.clone(),
        summary: Vec::new(),
        kpis: kpi_rows,
        agents,
        host,
        alerts,
        actions,
        trends,
        bottlenecks,
        opportunities,
        charts,
        units: units(),
    };
    report.summary = summary::sentences(&report);
    report
}

fn pool_names(b: &ReportBuilder) -> Vec<String> {
    let mut names: Vec<String> = b
        .current
        .agents
        .values()
        .chain(b.previous.agents.values())
        .map(|a| a.pool.clone())
        .collect();
    names.sort();
    names.dedup();
    names
}

fn pool_kpis(b: &ReportBuilder, scope: Scope<'_>, name: &str) -> PoolKpis {
    let mut ids: Vec<&str> = b
        .current
        .agents
        .keys()
        .filter(|(_, pool)| !matches!(scope, Scope::Pool(p) if p != pool))
        .map(|(id, _)| id.as_str())
        .collect();
    ids.dedup();
    let agents = ids.len();
    PoolKpis {
        pool: name.to_string(),
        agents,
        current: kpis(&b.current, scope),
        previous: kpis(&b.previous, scope),
        alerts_fired: fired_on(b, |a| !matches!(scope, Scope::Pool(p) if p != a.pool)),
    }
}

fn fired_on(b: &ReportBuilder, keep: impl Fn(&super::AlertInput) -> bool) -> u32 {
    b.alerts
        .iter()
        .filter(|a| a.to_state == "firing" && b.spec.window.contains(a.ts_ms) && keep(a))
        .count() as u32
}

/// Lowest availability first, then the highest error rate, then the slowest.
fn worst_first(a: &Kpis, b: &Kpis) -> std::cmp::Ordering {
    let key = |k: &Kpis| {
        (
            k.availability_percent.unwrap_or(f64::INFINITY),
            -k.error_rate_percent.unwrap_or(0.0),
            -k.response_time_p95_ms.unwrap_or(0.0),
        )
    };
    let (ka, kb) = (key(a), key(b));
    ka.0.total_cmp(&kb.0)
        .then(ka.1.total_cmp(&kb.1))
        .then(ka.2.total_cmp(&kb.2))
}

/// The mean of `metric` in each step of `pool`, oldest first.
fn step_means<'a>(
    sum: &'a WindowSum,
    pool: &'a str,
    name: &'a str,
) -> impl Iterator<Item = (i64, f64)> + 'a {
    sum.steps
        .range((pool.to_string(), i64::MIN)..=(pool.to_string(), i64::MAX))
        .filter_map(move |((_, ts), step)| {
            let &(total, count, _) = step.metrics.get(name)?;
            (count > 0).then(|| (*ts, total / count as f64))
        })
}

fn charts(b: &ReportBuilder, pools: &[String]) -> Vec<PoolChart> {
    // Agents in a step: their minutes over the step's minutes so far (the last step of a
    // final report is partial).
    let end = b.spec.window.until_ms.min(b.spec.generated_ms);
    let step_minutes = |ts: i64| {
        let span = b.step_ms.min(end - ts).max(super::MINUTE_MS);
        span as f64 / super::MINUTE_MS as f64
    };
    pools
        .iter()
        .map(|pool| {
            let mut agents: BTreeMap<i64, f64> = BTreeMap::new();
            for agent in b.current.agents.values().filter(|a| a.pool == *pool) {
                for (&ts, &minutes) in &agent.present {
                    *agents.entry(ts).or_default() += f64::from(minutes) / step_minutes(ts);
                }
            }
            let means =
                |name| -> BTreeMap<i64, f64> { step_means(&b.current, pool, name).collect() };
            let (cpu, response, errors) = (
                means(metric::CPU_PERCENT),
                means(metric::RESPONSE_TIME_MS),
                means(metric::ERROR_RATE),
            );
            let settings = b.spec.pools.iter().find(|p| p.name == *pool);
            PoolChart {
                pool: pool.clone(),
                step_ms: b.step_ms,
                min_agents: settings.map(|p| p.min_agents),
                max_agents: settings.map(|p| p.max_agents),
                points: agents
                    .into_iter()
                    .map(|(ts_ms, agents)| ChartPoint {
                        ts_ms,
                        agents,
                        utilisation_percent: cpu.get(&ts_ms).copied(),
                        response_time_ms: response.get(&ts_ms).copied(),
                        error_rate_percent: errors.get(&ts_ms).copied(),
                    })
                    .collect(),
            }
        })
        .collect()
}

fn trends(b: &ReportBuilder, pools: &[String]) -> Vec<Trend> {
    let window = b.spec.window;
    let horizon_hours = window.hours();
    let mut out = Vec::new();
    for pool in pools {
        let mut names: Vec<&String> = b
            .current
            .steps
            .range((pool.clone(), i64::MIN)..=(pool.clone(), i64::MAX))
            .flat_map(|(_, step)| step.metrics.keys())
            .collect();
        names.sort();
        names.dedup();
        for name in names {
            let points: Vec<(f64, f64)> = step_means(&b.current, pool, name)
                .map(|(ts, v)| {
                    let middle = ts + b.step_ms / 2 - window.since_ms;
                    (middle as f64 / HOUR_MS as f64, v)
                })
                .collect();
            let Some(fit) = fit_line(&points) else {
                continue;
            };
            let end = fit.at(horizon_hours);
            let rule = b
                .spec
                .rules
                .iter()
                .filter(|r| r.metric == *name && r.pool.as_deref().is_none_or(|p| p == pool))
                .filter(|r| r.above > end)
                .min_by(|x, y| x.above.total_cmp(&y.above));
            let crosses_in_hours = rule.and_then(|r| {
                let hours = (r.above - end) / fit.slope;
                (fit.significant() && fit.slope > 0.0 && hours <= horizon_hours).then_some(hours)
            });
            out.push(Trend {
                pool: pool.clone(),
                metric: name.clone(),
                points: fit.points,
                mean: points.iter().map(|p| p.1).sum::<f64>() / points.len() as f64,
                slope_per_hour: fit.slope,
                slope_ci95_low: fit.slope - fit.slope_ci95,
                slope_ci95_high: fit.slope + fit.slope_ci95,
                significant: fit.significant(),
                fitted_end: end,
                threshold: rule.map(|r| r.above),
                rule: rule.map(|r| r.name.clone()),
                crosses_in_hours,
            });
        }
    }
    out
}

fn units() -> BTreeMap<String, String> {
    [
        ("_ms", "milliseconds (epoch milliseconds for instants)"),
        ("_secs", "seconds"),
        ("_percent", "percent"),
        ("_per_s", "per second"),
        ("_per_hour", "the metric's unit per hour"),
        ("agent_hours", "hours of one agent running"),
        ("model_tokens", "model tokens, input and output together"),
        ("model_cost", "money, in the report's `currency`"),
        (
            "value, mean, max, p95, fitted_end, threshold",
            "the unit of the named metric",
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}
