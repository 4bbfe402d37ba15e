//! Every section of a report as tables of text cells: what the text, CSV and HTML forms print.
//! Numbers keep their units in the column names, so a cell is a plain number.

use crate::domain::time::rfc3339;
use crate::report::{Kpis, Report};

/// One table of a report.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    /// Its name, a CSV file's stem and the `table` column of the one-file form.
    pub name: &'static str,
    /// Its heading.
    pub title: &'static str,
    /// Column names.
    pub columns: Vec<&'static str>,
    /// Rows of cells, one per column.
    pub rows: Vec<Vec<String>>,
}

impl Table {
    /// The table without the columns that are empty in every row (a metric no agent
    /// reports), for people; CSV keeps every column, so its shape never changes.
    pub fn without_empty_columns(&self) -> Table {
        let keep: Vec<usize> = (0..self.columns.len())
            .filter(|&c| self.rows.is_empty() || self.rows.iter().any(|r| !r[c].is_empty()))
            .collect();
        Table {
            name: self.name,
            title: self.title,
            columns: keep.iter().map(|&c| self.columns[c]).collect(),
            rows: self
                .rows
                .iter()
                .map(|r| keep.iter().map(|&c| r[c].clone()).collect())
                .collect(),
        }
    }
}

/// A number with at most `decimals` decimals, trailing zeros dropped; empty when absent.
pub fn number(value: Option<f64>, decimals: usize) -> String {
    match value {
        Some(v) if v.is_finite() => {
            let text = format!("{v:.decimals$}");
            let text = if text.contains('.') {
                text.trim_end_matches('0').trim_end_matches('.').to_string()
            } else {
                text
            };
            if text == "-0" { "0".into() } else { text }
        }
        _ => String::new(),
    }
}

fn n(value: f64, decimals: usize) -> String {
    number(Some(value), decimals)
}

fn kpi_cells(k: &Kpis) -> [String; 11] {
    [
        number(k.availability_percent, 3),
        number(k.response_time_p50_ms, 1),
        number(k.response_time_p95_ms, 1),
        number(k.response_time_p99_ms, 1),
        number(k.error_rate_percent, 3),
        number(k.throughput_per_s, 3),
        number(k.utilisation_percent, 2),
        n(k.agent_hours, 2),
        number(k.model_tokens, 0),
        number(k.model_cost, 4),
        number(k.model_cost_per_task, 8),
    ]
}

const KPI_COLUMNS: [&str; 11] = [
    "availability_percent",
    "response_time_p50_ms",
    "response_time_p95_ms",
    "response_time_p99_ms",
    "error_rate_percent",
    "throughput_per_s",
    "utilisation_percent",
    "agent_hours",
    "model_tokens",
    "model_cost",
    "model_cost_per_task",
];

const PREVIOUS_COLUMNS: [&str; 11] = [
    "previous_availability_percent",
    "previous_response_time_p50_ms",
    "previous_response_time_p95_ms",
    "previous_response_time_p99_ms",
    "previous_error_rate_percent",
    "previous_throughput_per_s",
    "previous_utilisation_percent",
    "previous_agent_hours",
    "previous_model_tokens",
    "previous_model_cost",
    "previous_model_cost_per_task",
];

/// Every table of `report`, in reading order.
pub fn tables(report: &Report) -> Vec<Table> {
    let mut out = vec![Table {
        name: "summary",
        title: "Executive summary",
        columns: vec!["sentence"],
        rows: report.summary.iter().map(|s| vec![s.clone()]).collect(),
    }];
    let mut columns = vec!["pool", "agents"];
    columns.extend(KPI_COLUMNS);
    columns.extend(PREVIOUS_COLUMNS);
    columns.push("alerts_fired");
    out.push(Table {
        name: "kpis",
        title: "Key figures (fleet, then pools, worst first; previous period beside)",
        columns,
        rows: report
            .kpis
            .iter()
            .map(|p| {
                let mut row = vec![p.pool.clone(), p.agents.to_string()];
                row.extend(kpi_cells(&p.current));
                row.extend(kpi_cells(&p.previous));
                row.push(p.alerts_fired.to_string());
                row
            })
            .collect(),
    });
    let mut columns = vec!["agent", "pool"];
    columns.extend(KPI_COLUMNS);
    columns.push("alerts_fired");
    out.push(Table {
        name: "agents",
        title: "Agents (worst first)",
        columns,
        rows: report
            .agents
            .iter()
            .map(|a| {
                let mut row = vec![a.agent.clone(), a.pool.clone()];
                row.extend(kpi_cells(&a.kpis));
                row.push(a.alerts_fired.to_string());
                row
            })
            .collect(),
    });
    out.push(Table {
        name: "host",
        title: "Host resources",
        columns: vec!["metric", "mean", "max", "p95"],
        rows: report
            .host
            .iter()
            .map(|h| {
                vec![
                    h.metric.clone(),
                    n(h.mean, 2),
                    n(h.max, 2),
                    number(h.p95, 2),
                ]
            })
            .collect(),
    });
    out.extend(alert_tables(report));
    out.extend(action_tables(report));
    out.extend(finding_tables(report));
    out
}

fn alert_tables(report: &Report) -> Vec<Table> {
    let a = &report.alerts;
    vec![
        Table {
            name: "alert_totals",
            title: "Alerts",
            columns: vec![
                "fired",
                "still_firing",
                "mean_time_to_detect_secs",
                "mean_time_to_resolve_secs",
            ],
            rows: vec![vec![
                a.fired.to_string(),
                a.still_firing.to_string(),
                number(a.mean_time_to_detect_secs, 1),
                number(a.mean_time_to_resolve_secs, 1),
            ]],
        },
        Table {
            name: "alert_levels",
            title: "Alerts fired by level",
            columns: vec!["level", "fired"],
            rows: a
                .by_level
                .iter()
                .map(|(l, c)| vec![l.clone(), c.to_string()])
                .collect(),
        },
        Table {
            name: "alert_rules",
            title: "Alerts by rule (noisiest first)",
            columns: vec![
                "rule",
                "level",
                "fired",
                "resolved",
                "resolved_alone",
                "median_firing_secs",
            ],
            rows: a
                .by_rule
                .iter()
                .map(|r| {
                    vec![
                        r.rule.clone(),
                        r.level.clone(),
                        r.fired.to_string(),
                        r.resolved.to_string(),
                        r.resolved_alone.to_string(),
                        number(r.median_firing_secs, 1),
                    ]
                })
                .collect(),
        },
        Table {
            name: "silences",
            title: "Silences in force",
            columns: vec!["id", "matchers", "ends", "comment", "created_by"],
            rows: a
                .silences
                .iter()
                .map(|s| {
                    vec![
                        s.id.to_string(),
                        s.matchers.clone(),
                        rfc3339(s.ends_ms),
                        s.comment.clone(),
                        s.created_by.clone(),
                    ]
                })
                .collect(),
        },
    ]
}

fn action_tables(report: &Report) -> Vec<Table> {
    let x = &report.actions;
    vec![
        Table {
            name: "action_totals",
            title: "Actions",
            columns: vec![
                "approvals_decided",
                "mean_approval_wait_secs",
                "max_approval_wait_secs",
                "agent_hours_added",
                "agent_hours_saved",
            ],
            rows: vec![vec![
                x.approvals_decided.to_string(),
                number(x.mean_approval_wait_secs, 1),
                number(x.max_approval_wait_secs, 1),
                n(x.agent_hours_added, 2),
                n(x.agent_hours_saved, 2),
            ]],
        },
        Table {
            name: "action_states",
            title: "Action transitions by state",
            columns: vec!["state", "transitions"],
            rows: x
                .by_state
                .iter()
                .map(|(s, c)| vec![s.clone(), c.to_string()])
                .collect(),
        },
        Table {
            name: "actions",
            title: "Actions in the period",
            columns: vec![
                "id", "time", "kind", "pool", "agent", "change", "outcome", "actor",
            ],
            rows: x
                .actions
                .iter()
                .map(|l| {
                    vec![
                        l.id.to_string(),
                        rfc3339(l.ts_ms),
                        l.kind.clone(),
                        l.pool.clone(),
                        l.agent.clone().unwrap_or_default(),
                        l.change.clone(),
                        l.outcome.clone(),
                        l.actor.clone(),
                    ]
                })
                .collect(),
        },
    ]
}

fn finding_tables(report: &Report) -> Vec<Table> {
    let b = &report.bottlenecks;
    let figure = |f: &crate::report::AgentFigure| {
        vec![
            f.agent.clone(),
            f.pool.clone(),
            n(f.value, 3),
            n(f.pool_median, 3),
        ]
    };
    vec![
        Table {
            name: "trends",
            title: "Trends (least-squares slope per hour, 95% interval)",
            columns: vec![
                "pool",
                "metric",
                "points",
                "mean",
                "slope_per_hour",
                "slope_ci95_low",
                "slope_ci95_high",
                "significant",
                "fitted_end",
                "threshold",
                "rule",
                "crosses_in_hours",
            ],
            rows: report
                .trends
                .iter()
                .map(|t| {
                    vec![
                        t.pool.clone(),
                        t.metric.clone(),
                        t.points.to_string(),
                        n(t.mean, 3),
                        n(t.slope_per_hour, 4),
                        n(t.slope_ci95_low, 4),
                        n(t.slope_ci95_high, 4),
                        if t.significant { "yes" } else { "no" }.into(),
                        n(t.fitted_end, 3),
                        number(t.threshold, 3),
                        t.rule.clone().unwrap_or_default(),
                        number(t.crosses_in_hours, 2),
                    ]
                })
                .collect(),
        },
        Table {
            name: "saturated_pools",
            title: "Saturated pools",
            columns: vec![
                "pool",
                "utilisation_percent",
                "target_cpu_percent",
                "at_max_percent",
            ],
            rows: b
                .saturated_pools
                .iter()
                .map(|p| {
                    vec![
                        p.pool.clone(),
                        n(p.utilisation_percent, 2),
                        n(p.target_cpu_percent, 2),
                        n(p.at_max_percent, 1),
                    ]
                })
                .collect(),
        },
        Table {
            name: "slowest_agents",
            title: "Slowest agents (response time p95, ms)",
            columns: vec!["agent", "pool", "value", "pool_median"],
            rows: b.slowest_agents.iter().map(figure).collect(),
        },
        Table {
            name: "error_outliers",
            title: "Error-rate outliers (percent)",
            columns: vec!["agent", "pool", "value", "pool_median"],
            rows: b.error_outliers.iter().map(figure).collect(),
        },
        Table {
            name: "opportunities",
            title: "Optimization opportunities",
            columns: vec![
                "kind",
                "pool",
                "rule",
                "agent_hours_saved",
                "alerts_avoided",
                "advice",
            ],
            rows: report
                .opportunities
                .iter()
                .map(|o| {
                    vec![
                        o.kind.clone(),
                        o.pool.clone().unwrap_or_default(),
                        o.rule.clone().unwrap_or_default(),
                        number(o.agent_hours_saved, 2),
                        o.alerts_avoided.map(|a| a.to_string()).unwrap_or_default(),
                        o.advice.clone(),
                    ]
                })
                .collect(),
        },
    ]
}
