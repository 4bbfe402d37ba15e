//! The sections computed from the summed windows: key figures, agents, host, charts, trends,
//! bottlenecks and opportunities.

use std::collections::BTreeMap;

use super::build::{ReportBuilder, Scope, WindowSum, kpis};
use super::model::*;
use super::trend::fit_line;
use super::{HOUR_MS, events, summary};
use crate::domain::metric;

/// Agents named as slowest, at most.
const SLOWEST: usize = 5;
/// A robust z-score above this marks an error-rate outlier.
const OUTLIER_Z: f64 = 3.5;
/// And it must exceed its pool's median by this many percentage points.
const OUTLIER_FLOOR: f64 = 1.0;

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

/// The median of `values` (sorted in place); `None` when empty.
pub(super) fn median(values: &mut [f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let n = values.len();
    Some(if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    })
}

/// Share of a chart's steps (percent) at or above `max`, and the pool's mean CPU over them.
fn at_max(chart: &PoolChart, max: usize) -> (f64, Option<f64>) {
    let at: Vec<&ChartPoint> = chart
        .points
        .iter()
        .filter(|p| p.agents >= max as f64 - 0.5)
        .collect();
    let share = 100.0 * at.len() as f64 / chart.points.len().max(1) as f64;
    let cpu: Vec<f64> = at.iter().filter_map(|p| p.utilisation_percent).collect();
    (
        share,
        (!cpu.is_empty()).then(|| cpu.iter().sum::<f64>() / cpu.len() as f64),
    )
}

fn bottlenecks(b: &ReportBuilder, agents: &[AgentKpis], charts: &[PoolChart]) -> Bottlenecks {
    let mut out = Bottlenecks::default();
    for settings in &b.spec.pools {
        let Some(chart) = charts.iter().find(|c| c.pool == settings.name) else {
            continue;
        };
        let Some(cpu) = kpis(&b.current, Scope::Pool(&settings.name)).utilisation_percent else {
            continue;
        };
        let (share, cpu_at_max) = at_max(chart, settings.max_agents);
        let target = settings.target_cpu_percent;
        let hot = cpu >= target * (1.0 + settings.tolerance);
        let stuck = share >= 25.0 && cpu_at_max.is_some_and(|c| c >= target);
        if hot || stuck {
            out.saturated_pools.push(SaturatedPool {
                pool: settings.name.clone(),
                utilisation_percent: cpu,
                target_cpu_percent: target,
                at_max_percent: share,
            });
        }
    }
    let pool_median = |pool: &str, value: fn(&Kpis) -> Option<f64>| {
        let mut values: Vec<f64> = agents
            .iter()
            .filter(|a| a.pool == pool)
            .filter_map(|a| value(&a.kpis))
            .collect();
        (median(&mut values), values)
    };
    let mut slow: Vec<AgentFigure> = agents
        .iter()
        .filter_map(|a| {
            let value = a.kpis.response_time_p95_ms?;
            let (pool_median, _) = pool_median(&a.pool, |k| k.response_time_p95_ms);
            Some(AgentFigure {
                agent: a.agent.clone(),
                pool: a.pool.clone(),
                value,
                pool_median: pool_median.unwrap_or(value),
            })
        })
        .collect();
    slow.sort_by(|x, y| {
        y.value
            .total_cmp(&x.value)
            .then_with(|| x.agent.cmp(&y.agent))
    });
    slow.truncate(SLOWEST);
    out.slowest_agents = slow;
    for a in agents {
        let Some(value) = a.kpis.error_rate_percent else {
            continue;
        };
        let (Some(center), mut values) = pool_median(&a.pool, |k| k.error_rate_percent) else {
            continue;
        };
        if values.len() < 3 {
            continue;
        }
        for v in values.iter_mut() {
            *v = (*v - center).abs();
        }
        let mad = median(&mut values).unwrap_or(0.0);
        let z = if mad > 0.0 {
            (value - center) / (1.4826 * mad)
        } else {
            f64::INFINITY
        };
        if value - center >= OUTLIER_FLOOR && z > OUTLIER_Z {
            out.error_outliers.push(AgentFigure {
                agent: a.agent.clone(),
                pool: a.pool.clone(),
                value,
                pool_median: center,
            });
        }
    }
    out
}

fn opportunities(
    b: &ReportBuilder,
    charts: &[PoolChart],
    alerts: &AlertSection,
) -> Vec<Opportunity> {
    let mut out = Vec::new();
    let step_hours = b.step_ms as f64 / HOUR_MS as f64;
    for settings in &b.spec.pools {
        let Some(chart) = charts.iter().find(|c| c.pool == settings.name) else {
            continue;
        };
        let floor: Vec<&ChartPoint> = chart
            .points
            .iter()
            .filter(|p| p.agents <= settings.min_agents as f64 + 0.5)
            .collect();
        let cpu: Vec<f64> = floor.iter().filter_map(|p| p.utilisation_percent).collect();
        if floor.len() * 2 >= chart.points.len() && !cpu.is_empty() && settings.min_agents > 1 {
            let mean_cpu = cpu.iter().sum::<f64>() / cpu.len() as f64;
            let needed = ((settings.min_agents as f64 * mean_cpu / settings.target_cpu_percent)
                .ceil() as usize)
                .max(1);
            if needed < settings.min_agents {
                let saved = (settings.min_agents - needed) as f64 * floor.len() as f64 * step_hours;
                out.push(Opportunity {
                    kind: "lower_min_agents".into(),
                    pool: Some(settings.name.clone()),
                    rule: None,
                    advice: format!(
                        "Pool {} sat at its minimum of {} agents for {:.0}% of the period at \
                         {mean_cpu:.1}% CPU against a target of {:.0}%: min_agents = {needed} \
                         would carry that load.",
                        settings.name,
                        settings.min_agents,
                        100.0 * floor.len() as f64 / chart.points.len() as f64,
                        settings.target_cpu_percent
                    ),
                    agent_hours_saved: Some(saved),
                    alerts_avoided: None,
                });
            }
        }
        let (share, cpu_at_max) = at_max(chart, settings.max_agents);
        if share >= 25.0 && cpu_at_max.is_some_and(|c| c >= settings.target_cpu_percent) {
            out.push(Opportunity {
                kind: "raise_max_agents".into(),
                pool: Some(settings.name.clone()),
                rule: None,
                advice: format!(
                    "Pool {} ran at its maximum of {} agents for {share:.0}% of the period with \
                     CPU above its {:.0}% target: a higher max_agents would let it scale.",
                    settings.name, settings.max_agents, settings.target_cpu_percent
                ),
                agent_hours_saved: None,
                alerts_avoided: None,
            });
        }
    }
    for rule in &alerts.by_rule {
        if rule.fired >= 3 && rule.resolved >= 3 && rule.resolved_alone * 5 >= rule.resolved * 4 {
            let threshold = b
                .spec
                .rules
                .iter()
                .find(|r| r.name == rule.rule)
                .map(|r| r.above);
            let minutes = rule.median_firing_secs.unwrap_or(0.0) / 60.0;
            out.push(Opportunity {
                kind: "quiet_rule".into(),
                pool: None,
                rule: Some(rule.rule.clone()),
                advice: format!(
                    "Rule {} fired {} times and resolved by itself {} times, after a median of \
                     {minutes:.1} min: raise its threshold{} or lengthen its `for` past that.",
                    rule.rule,
                    rule.fired,
                    rule.resolved_alone,
                    threshold.map_or(String::new(), |t| format!(" (now {t})")),
                ),
                agent_hours_saved: None,
                alerts_avoided: Some(rule.resolved_alone),
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
        (
            "value, mean, max, p95, fitted_end, threshold",
            "the unit of the named metric",
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}
