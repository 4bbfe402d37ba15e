//! The executive summary: a few sentences written from the report's own numbers.

use super::model::{Kpis, Report};
use crate::domain::time::rfc3339;

/// What changed, what went wrong, what the controller did, where it is heading and what to
/// change, each sentence from the sections' figures.
pub(super) fn sentences(report: &Report) -> Vec<String> {
    let mut out = Vec::new();
    let fleet = report.kpis.first();
    let pools = report.kpis.len().saturating_sub(1);
    let span = format!(
        "From {} to {}",
        rfc3339(report.window.since_ms),
        rfc3339(report.window.until_ms.min(report.generated_ms))
    );
    match fleet {
        Some(fleet) if fleet.agents > 0 => {
            let k = &fleet.current;
            let mut s = format!(
                "{span}, {} agents in {pools} pool{} ran {:.1} agent-hours{}",
                fleet.agents,
                if pools == 1 { "" } else { "s" },
                k.agent_hours,
                change(k.agent_hours, fleet.previous.agent_hours, "")
            );
            if let Some(a) = k.availability_percent {
                s += &format!(" at {a:.2}% availability");
                if let Some(p) = fleet.previous.availability_percent {
                    s += &format!(" (previous period {p:.2}%)");
                }
            }
            s.push('.');
            out.push(s);
            out.push(service(k, &fleet.previous));
            out.extend(models(k, &fleet.previous, &report.currency));
        }
        _ => out.push(format!("{span}, no agent reported.")),
    }
    let alerts = &report.alerts;
    if alerts.fired == 0 {
        out.push("No alert fired.".into());
    } else {
        let levels: Vec<String> = alerts
            .by_level
            .iter()
            .map(|(l, n)| format!("{n} {l}"))
            .collect();
        let mut s = format!(
            "{} alert{} fired ({})",
            alerts.fired,
            if alerts.fired == 1 { "" } else { "s" },
            levels.join(", ")
        );
        if let Some(rule) = alerts.by_rule.first() {
            s += &format!(", the most from {} ({})", rule.rule, rule.fired);
        }
        if let Some(t) = alerts.mean_time_to_resolve_secs {
            s += &format!("; they resolved after {} on average", duration(t));
        }
        match alerts.still_firing {
            0 => {}
            1 => s += ", and 1 still fires",
            n => s += &format!(", and {n} still fire"),
        }
        s.push('.');
        out.push(s);
    }
    let actions = &report.actions;
    let count = |state: &str| actions.by_state.get(state).copied().unwrap_or(0);
    let applied = count("applied");
    if actions.actions.is_empty() {
        out.push("The controller changed nothing.".into());
    } else {
        let mut s = format!(
            "The controller applied {applied} action{}",
            if applied == 1 { "" } else { "s" }
        );
        for (state, words) in [
            ("rolled_back", "rolled back"),
            ("rejected", "had rejected"),
            ("expired", "let expire"),
            ("failed", "saw fail"),
        ] {
            if count(state) > 0 {
                s += &format!(", {words} {}", count(state));
            }
        }
        let net = actions.agent_hours_added - actions.agent_hours_saved;
        if actions.agent_hours_added > 0.0 || actions.agent_hours_saved > 0.0 {
            s += &format!(
                "; scaling {} {:.1} agent-hours net",
                if net >= 0.0 { "added" } else { "saved" },
                net.abs()
            );
        }
        s.push('.');
        out.push(s);
    }
    if let Some(t) = report.trends.iter().find(|t| t.crosses_in_hours.is_some()) {
        out.push(format!(
            "{} in pool {} rises {:.3} an hour and is forecast to cross {} ({}) in {:.1} h.",
            t.metric,
            t.pool,
            t.slope_per_hour,
            t.threshold.unwrap_or_default(),
            t.rule.as_deref().unwrap_or("-"),
            t.crosses_in_hours.unwrap_or_default()
        ));
    }
    if let Some(p) = report.bottlenecks.saturated_pools.first() {
        out.push(format!(
            "Pool {} is saturated: {:.1}% CPU against a {:.0}% target.",
            p.pool, p.utilisation_percent, p.target_cpu_percent
        ));
    }
    match report.opportunities.first() {
        Some(o) => out.push(format!("Recommended: {}", o.advice)),
        None => out.push("No change is recommended.".into()),
    }
    out
}

/// What the models used and cost, when any agent reported tokens or cost.
fn models(k: &Kpis, previous: &Kpis, currency: &str) -> Option<String> {
    let mut parts = Vec::new();
    if let Some(tokens) = k.model_tokens {
        parts.push(format!("used {} tokens", si(tokens)));
    }
    if let Some(cost) = k.model_cost {
        let mut s = format!(
            "cost {cost:.2} {currency}{}",
            change(cost, previous.model_cost.unwrap_or(0.0), "")
        );
        if let Some(per_task) = k.model_cost_per_task {
            s += &format!(", {} {currency} a completed task", money(per_task));
        }
        parts.push(s);
    }
    (!parts.is_empty()).then(|| format!("Models {}.", parts.join(" and ")))
}

/// Money with two decimals, or three significant digits when under one.
fn money(value: f64) -> String {
    if value.abs() >= 1.0 || value == 0.0 || !value.is_finite() {
        return format!("{value:.2}");
    }
    let decimals = (2.0 - value.abs().log10().floor()).clamp(2.0, 12.0) as usize;
    format!("{value:.decimals$}")
}

/// `950`, `12.3 k`, `4.56 M`, `7.89 G`.
fn si(value: f64) -> String {
    match value.abs() {
        v if v >= 1e9 => format!("{:.2} G", value / 1e9),
        v if v >= 1e6 => format!("{:.2} M", value / 1e6),
        v if v >= 1e3 => format!("{:.1} k", value / 1e3),
        _ => format!("{value:.0}"),
    }
}

fn service(k: &Kpis, previous: &Kpis) -> String {
    let mut parts = Vec::new();
    if let Some(p95) = k.response_time_p95_ms {
        parts.push(format!(
            "response time p95 {p95:.1} ms{}",
            change(p95, previous.response_time_p95_ms.unwrap_or(0.0), "")
        ));
    }
    if let Some(e) = k.error_rate_percent {
        parts.push(format!("error rate {e:.2}%"));
    }
    if let Some(t) = k.throughput_per_s {
        parts.push(format!("{t:.2} tasks/s"));
    }
    if let Some(u) = k.utilisation_percent {
        parts.push(format!("CPU {u:.1}% per agent"));
    }
    if parts.is_empty() {
        "No service metrics were reported.".into()
    } else {
        let mut s = parts.join(", ");
        if let Some(first) = s.get_mut(0..1) {
            first.make_ascii_uppercase();
        }
        s + "."
    }
}

/// ` (+12% on the previous period)`, or nothing when there was no previous figure.
fn change(now: f64, before: f64, _unit: &str) -> String {
    if before <= 0.0 {
        return String::new();
    }
    format!(
        " ({:+.0}% on the previous period)",
        100.0 * (now / before - 1.0)
    )
}

/// Seconds as `45 s`, `12.5 min` or `3.2 h`.
fn duration(secs: f64) -> String {
    if secs < 120.0 {
        format!("{secs:.0} s")
    } else if secs < 7200.0 {
        format!("{:.1} min", secs / 60.0)
    } else {
        format!("{:.1} h", secs / 3600.0)
    }
}
