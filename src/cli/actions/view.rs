//! How `swarmpilot actions` shows actions to a person: the aligned list, one action in
//! detail, and the one-line outcome of a decision. Plain functions from actions to text.

use serde::Deserialize;

use crate::analytics::risk::RiskAssessment;
use crate::cli::text::{align, span};
use crate::clock;
use crate::domain::evidence::Evidence;
use crate::domain::{Action, ActionState, Change};
use crate::policy::RiskMode;

/// Width of the labels in the detail view.
const LABEL: usize = 10;

/// One row of `GET /api/v1/log`: the parts the detail view shows.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct LogRow {
    /// Row number, increasing; the log pages on it.
    pub seq: i64,
    /// RFC 3339 time of the transition.
    pub time: String,
    /// The action.
    pub action_id: i64,
    /// State before; none for the first row.
    pub from_state: Option<String>,
    /// State after.
    pub to_state: String,
    /// Why.
    pub reason: String,
    /// Who: `auto`, `policy` or a person.
    pub actor: String,
}

/// The actions as an aligned table, in the order given, one line each.
pub fn table(actions: &[Action], now_ms: i64) -> String {
    let header = ["ID", "STATE", "KIND", "POOL", "CHANGE", "RISK", "WHEN"];
    let mut rows = vec![header.iter().map(|h| h.to_string()).collect::<Vec<_>>()];
    for action in actions {
        rows.push(vec![
            action.id.to_string(),
            action.state.as_str().to_string(),
            action.kind.as_str().to_string(),
            action.pool.clone(),
            change(&action.change),
            risk(&action.risk),
            when(action, now_ms),
        ]);
    }
    align(&rows, "")
}

/// One action in full: change, state, times, reason, risk and its factors, approvals,
/// evidence (pretty JSON) and its log rows, oldest first.
pub fn detail(action: &Action, log: &[LogRow], now_ms: i64) -> String {
    let mut out = format!(
        "action {}: {} in pool {}\n",
        action.id,
        change(&action.change),
        action.pool
    );
    let mut line = |label: &str, text: String| {
        out.push_str(&format!("{label:<LABEL$} {text}\n"));
    };
    let mut state = action.state.as_str().to_string();
    if action.state == ActionState::PendingApproval
        && let Some(expires_ms) = action.expires_ms
    {
        state.push_str(&format!(
            ", {} ({})",
            expiry(expires_ms, now_ms),
            clock::rfc3339(expires_ms)
        ));
    }
    line("state", state);
    line("created", at(action.created_ms, now_ms));
    line("updated", at(action.updated_ms, now_ms));
    line("reason", action.reason.clone());
    if !action.expected_effect.is_empty() {
        line("expected", action.expected_effect.clone());
    }
    line(
        "undo",
        match &action.inverse {
            Some(inverse) => change(inverse),
            None => "none: this change cannot be undone".to_string(),
        },
    );
    let gate = match &action.risk {
        Some(assessment) => format!(": {}", mode_text(assessment.mode)),
        None => String::new(),
    };
    line("risk", format!("{}{gate}", risk(&action.risk)));
    let hanging = " ".repeat(LABEL + 1);
    if let Some(assessment) = &action.risk {
        let mut rows = vec![vec!["factor".into(), "value".into(), "adds".into()]];
        for factor in &assessment.factors {
            rows.push(vec![
                factor.name.clone(),
                format!("{:.2}", factor.value),
                format!("+{:.2}", factor.contribution),
            ]);
        }
        out.push_str(&align(&rows, &hanging));
    }
    let mut line = |label: &str, text: String| {
        out.push_str(&format!("{label:<LABEL$} {text}\n"));
    };
    let needed = action.approvals_needed();
    match action.approvals.as_slice() {
        [] => line("approvals", "none".to_string()),
        approvals => {
            for (i, approval) in approvals.iter().enumerate() {
                let label = if i == 0 { "approvals" } else { "" };
                let text = format!(
                    "{} at {} ({} of {needed})",
                    approval.by,
                    clock::rfc3339(approval.at_ms),
                    i + 1
                );
                line(label, text);
            }
        }
    }
    // Pretty JSON hangs under its label: the first line beside it, the rest indented.
    let evidence = indent(&pretty(&action.evidence), &hanging);
    line("evidence", evidence.trim().to_string());
    out.push_str("log\n");
    if log.is_empty() {
        out.push_str("  (no rows)\n");
    }
    let mut rows = Vec::new();
    for row in log.iter().rev() {
        let transition = match &row.from_state {
            Some(from) => format!("{from} → {}", row.to_state),
            None => row.to_state.clone(),
        };
        rows.push(vec![
            row.time.clone(),
            transition,
            row.actor.clone(),
            row.reason.clone(),
        ]);
    }
    out.push_str(&align(&rows, "  "));
    out
}

/// The outcome of an approval, e.g. `action 7: approved by ann (1 of 1) → applying`.
pub fn approved(action: &Action) -> String {
    let by = match action.approvals.last() {
        Some(last) => format!(
            " by {} ({} of {})",
            last.by,
            action.approvals.len(),
            action.approvals_needed()
        ),
        None => String::new(),
    };
    format!(
        "action {}: approved{by} → {}",
        action.id,
        action.state.as_str()
    )
}

/// The outcome of a rejection, e.g. `action 8: rejected by ann → rejected`.
pub fn rejected(action: &Action, by: Option<&str>) -> String {
    let by = by.map(|by| format!(" by {by}")).unwrap_or_default();
    format!(
        "action {}: rejected{by} → {}",
        action.id,
        action.state.as_str()
    )
}

/// The outcome of a rollback, e.g. `action 5: rolled back by ann (scale 3→2) → rolled_back`.
pub fn rolled_back(action: &Action, by: Option<&str>) -> String {
    let by = by.map(|by| format!(" by {by}")).unwrap_or_default();
    let undo = action
        .inverse
        .as_ref()
        .map(|inverse| format!(" ({})", change(inverse)))
        .unwrap_or_default();
    format!(
        "action {}: rolled back{by}{undo} → {}",
        action.id,
        action.state.as_str()
    )
}

/// A change in short form: `scale 2→5`, `restart w-3`, `threshold r 70→80`,
/// `redistribute (3 weights)`.
pub fn change(change: &Change) -> String {
    match change {
        Change::Scale { from, to } => format!("scale {from}→{to}"),
        Change::Restart { agent } => format!("restart {agent}"),
        Change::AdjustThreshold { rule, from, to } => format!("threshold {rule} {from}→{to}"),
        Change::Redistribute { to, .. } => format!(
            "redistribute ({} weight{})",
            to.len(),
            if to.len() == 1 { "" } else { "s" }
        ),
        Change::AdjustConcurrency { from, to } => format!("concurrency {from}→{to}"),
        Change::SwitchModel { agent, from, to } => format!("model {agent} {from}→{to}"),
    }
}

/// Score and class, e.g. `0.59 medium`; `-` before the gate has scored the action.
fn risk(risk: &Option<RiskAssessment>) -> String {
    risk.as_ref()
        .map_or_else(|| "-".to_string(), ToString::to_string)
}

/// What the gate's mode means for the action.
fn mode_text(mode: RiskMode) -> &'static str {
    match mode {
        RiskMode::Auto => "policy applies it by itself",
        RiskMode::Approval => "needs 1 approval",
        RiskMode::TwoPerson => "needs 2 approvals from different people",
        RiskMode::Forbidden => "policy forbids it",
    }
}

/// When to look at an action: the expiry of a pending one, else its age.
fn when(action: &Action, now_ms: i64) -> String {
    match (action.state, action.expires_ms) {
        (ActionState::PendingApproval, Some(expires_ms)) => expiry(expires_ms, now_ms),
        _ => format!("{} ago", span(now_ms - action.created_ms)),
    }
}

fn expiry(expires_ms: i64, now_ms: i64) -> String {
    if expires_ms > now_ms {
        format!("expires in {}", span(expires_ms - now_ms))
    } else {
        "expiry passed".to_string()
    }
}

fn at(ms: i64, now_ms: i64) -> String {
    format!("{} ({} ago)", clock::rfc3339(ms), span(now_ms - ms))
}

fn pretty(evidence: &Evidence) -> String {
    serde_json::to_string_pretty(evidence).unwrap_or_else(|error| format!("({error})"))
}

fn indent(text: &str, prefix: &str) -> String {
    text.lines().map(|l| format!("{prefix}{l}\n")).collect()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::analytics::risk::RiskFactor;
    use crate::domain::evidence::RequestedEvidence;
    use crate::domain::{ActionKind, Approval};

    const NOW: i64 = 1_700_000_000_000;

    fn action(id: i64, state: ActionState, change_: Change) -> Action {
        Action {
            id,
            kind: change_.kind(),
            pool: "web".into(),
            agent: None,
            state,
            inverse: change_.inverse(),
            change: change_,
            reason: "requested by olga".into(),
            evidence: Evidence::Requested(RequestedEvidence {
                requested_by: "olga".into(),
            }),
            expected_effect: "agent web-1 starts again".into(),
            created_ms: NOW - 90_000,
            updated_ms: NOW - 30_000,
            risk: Some(RiskAssessment {
                score: 0.5,
                class: "medium".into(),
                mode: RiskMode::Approval,
                factors: vec![RiskFactor {
                    name: "kind".into(),
                    value: 1.0,
                    contribution: 0.35,
                }],
            }),
            expires_ms: Some(NOW + 12 * 60_000 + 5_000),
            approvals: vec![],
        }
    }

    fn check(change_: Change, expected: &str) {
        assert_eq!(change(&change_), expected);
    }

    #[test]
    fn changes_in_short_form() {
        check(Change::Scale { from: 2, to: 5 }, "scale 2→5");
        check(
            Change::Restart {
                agent: "w-3".into(),
            },
            "restart w-3",
        );
        let threshold = Change::AdjustThreshold {
            rule: "r".into(),
            from: 70.0,
            to: 80.5,
        };
        check(threshold, "threshold r 70→80.5");
        let weights: BTreeMap<String, f64> = [("a", 0.2), ("b", 0.3), ("c", 0.5)]
            .map(|(k, v)| (k.to_string(), v))
            .into();
        let redistribute = Change::Redistribute {
            from: weights.clone(),
            to: weights,
        };
        check(redistribute, "redistribute (3 weights)");
    }

    #[test]
    fn table_aligns_columns_and_shows_expiry_of_pending_ones() {
        let actions = [
            action(
                12,
                ActionState::PendingApproval,
                Change::Restart {
                    agent: "web-1".into(),
                },
            ),
            action(3, ActionState::Applied, Change::Scale { from: 0, to: 2 }),
        ];
        let table = table(&actions, NOW);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(
            lines[0],
            "ID  STATE             KIND     POOL  CHANGE         RISK         WHEN"
        );
        assert_eq!(
            lines[1],
            "12  pending_approval  restart  web   restart web-1  0.50 medium  expires in 12m"
        );
        assert_eq!(
            lines[2],
            "3   applied           scale    web   scale 0→2      0.50 medium  1m ago"
        );
    }

    #[test]
    fn decisions_read_as_one_line() {
        let mut done = action(
            7,
            ActionState::Applying,
            Change::Restart { agent: "w".into() },
        );
        done.approvals = vec![Approval {
            by: "ann".into(),
            at_ms: NOW,
        }];
        assert_eq!(
            approved(&done),
            "action 7: approved by ann (1 of 1) → applying"
        );
        if let Some(risk) = done.risk.as_mut() {
            risk.mode = RiskMode::TwoPerson;
        }
        done.state = ActionState::PendingApproval;
        assert_eq!(
            approved(&done),
            "action 7: approved by ann (1 of 2) → pending_approval"
        );
        let refused = action(
            8,
            ActionState::Rejected,
            Change::Restart { agent: "w".into() },
        );
        assert_eq!(
            rejected(&refused, Some("ann")),
            "action 8: rejected by ann → rejected"
        );
        let undone = action(5, ActionState::RolledBack, Change::Scale { from: 2, to: 3 });
        assert_eq!(
            rolled_back(&undone, Some("ann")),
            "action 5: rolled back by ann (scale 3→2) → rolled_back"
        );
        assert_eq!(
            rolled_back(&undone, None),
            "action 5: rolled back (scale 3→2) → rolled_back"
        );
    }

    #[test]
    fn detail_shows_risk_evidence_and_log_oldest_first() {
        let pending = action(
            12,
            ActionState::PendingApproval,
            Change::Restart {
                agent: "web-1".into(),
            },
        );
        assert_eq!(pending.kind, ActionKind::Restart);
        let row = |seq, from: Option<&str>, to: &str, actor: &str| LogRow {
            seq,
            time: clock::rfc3339(NOW - 90_000 + seq),
            action_id: 12,
            from_state: from.map(str::to_string),
            to_state: to.into(),
            reason: format!("reason {seq}"),
            actor: actor.into(),
        };
        let log = [
            row(2, Some("proposed"), "pending_approval", "policy"),
            row(1, None, "proposed", "olga"),
        ];
        let text = detail(&pending, &log, NOW);
        assert!(
            text.starts_with("action 12: restart web-1 in pool web\n"),
            "{text}"
        );
        assert!(
            text.contains("state      pending_approval, expires in 12m ("),
            "{text}"
        );
        assert!(
            text.contains("risk       0.50 medium: needs 1 approval\n"),
            "{text}"
        );
        assert!(
            text.contains("undo       none: this change cannot be undone\n"),
            "{text}"
        );
        assert!(
            text.contains("\n           kind    1.00   +0.35\n"),
            "{text}"
        );
        let evidence = "evidence   {\n             \"requested_by\": \"olga\"\n           }\n";
        assert!(text.contains(evidence), "{text}");
        let proposed = text.find("proposed  ").unwrap();
        let pending_row = text
            .find("proposed → pending_approval  policy  reason 2")
            .unwrap();
        assert!(proposed < pending_row, "{text}");
    }

    #[test]
    fn spans_use_their_largest_unit() {
        assert_eq!(span(45_000), "45s");
        assert_eq!(span(12 * 60_000 + 59_000), "12m");
        assert_eq!(span(5 * 3_600_000), "5h");
        assert_eq!(span(3 * 86_400_000), "3d");
        assert_eq!(span(-5), "0s");
    }
}
