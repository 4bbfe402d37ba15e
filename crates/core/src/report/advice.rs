//! Bottlenecks (saturated pools, the slowest agents, error-rate outliers) and optimization
//! opportunities with their expected effect.

use super::HOUR_MS;
use super::build::ReportBuilder;
use super::kpis::{Scope, kpis};
use super::model::*;

/// Agents named as slowest, at most.
const SLOWEST: usize = 5;
/// A robust z-score above this marks an error-rate outlier.
const OUTLIER_Z: f64 = 3.5;
/// And it must exceed its pool's median by this many percentage points.
const OUTLIER_FLOOR: f64 = 1.0;

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

pub(super) fn bottlenecks(
    b: &ReportBuilder,
    agents: &[AgentKpis],
    charts: &[PoolChart],
) -> Bottlenecks {
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

pub(super) fn opportunities(
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
