//! The alert rules an agent checks its samples against, and which of them are breached.
//!
//! Each series finds the range of its metric's rules once per policy version ([`RuleBook::span`])
//! and keeps it, so a sample costs its rules' comparisons and nothing else: no search among
//! the rules, no lookup of the breach state by name.

use std::ops::Range;
use std::sync::Arc;

use crate::policy::AlertRule;

/// The pool's rules in force and the breach state of each.
#[derive(Debug)]
pub(super) struct RuleBook {
    /// Sorted by metric, so that a metric's rules are one range; shared with the pool's other
    /// agents.
    rules: Arc<[AlertRule]>,
    /// Whether each rule is breached, by its index in `rules`.
    breached: Vec<bool>,
}

impl Default for RuleBook {
    fn default() -> Self {
        RuleBook {
            rules: Vec::new().into(),
            breached: Vec::new(),
        }
    }
}

impl RuleBook {
    /// The indexes of the rules on `metric` (`u32`s: every series keeps two spans).
    pub(super) fn span(&self, metric: &str) -> Range<u32> {
        let start = self.rules.partition_point(|r| r.metric.as_str() < metric);
        let count = self.rules[start..]
            .iter()
            .take_while(|r| r.metric == metric)
            .count();
        start as u32..(start + count) as u32
    }

    /// Checks `value` against the rules in `span`; `changed` hears of each rule whose breach
    /// begins (`true`) or ends (`false`).
    pub(super) fn check(
        &mut self,
        span: Range<u32>,
        value: f64,
        mut changed: impl FnMut(&AlertRule, bool),
    ) {
        for i in span.start as usize..span.end as usize {
            let (rule, was) = (&self.rules[i], self.breached[i]);
            // Hysteresis: once breached, the rule holds until the value falls to `clear_below`.
            let breached = if was {
                value > rule.clear_below.unwrap_or(rule.above).min(rule.above)
            } else {
                value > rule.above
            };
            // Only changes are told: the alert actor owns timing and state.
            if breached != was {
                self.breached[i] = breached;
                changed(rule, breached);
            }
        }
    }

    /// Puts `rules` in force, keeping the breach state of rules that stay (by name); answers
    /// the breached rules that are gone, whose alerts are to be resolved. Spans taken before
    /// are stale.
    pub(super) fn replace(&mut self, rules: Arc<[AlertRule]>) -> Vec<AlertRule> {
        let old = std::mem::replace(&mut self.rules, rules);
        let old_breached = std::mem::take(&mut self.breached);
        let breached_before: Vec<&AlertRule> = old
            .iter()
            .zip(&old_breached)
            .filter_map(|(rule, &breached)| breached.then_some(rule))
            .collect();
        self.breached = self
            .rules
            .iter()
            .map(|rule| breached_before.iter().any(|old| old.name == rule.name))
            .collect();
        breached_before
            .into_iter()
            .filter(|old| !self.rules.iter().any(|rule| rule.name == old.name))
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(name: &str, metric: &str, above: f64, clear_below: Option<f64>) -> AlertRule {
        let mut rule: AlertRule = serde_json::from_value(serde_json::json!({
            "name": name, "metric": metric, "above": above,
        }))
        .unwrap();
        rule.clear_below = clear_below;
        rule
    }

    fn book(rules: Vec<AlertRule>) -> RuleBook {
        let mut book = RuleBook::default();
        book.replace(rules.into());
        book
    }

    #[test]
    fn a_span_is_the_metrics_rules_and_only_changes_are_told() {
        let mut book = book(vec![
            rule("cpu_high", "cpu_percent", 80.0, Some(70.0)),
            rule("cpu_very_high", "cpu_percent", 95.0, None),
            rule("errors", "error_rate", 0.05, None),
        ]);
        assert_eq!(book.span("cpu_percent"), 0..2);
        assert_eq!(book.span("error_rate"), 2..3);
        assert!(book.span("disk_bytes").is_empty());
        let mut told = Vec::new();
        for value in [50.0, 85.0, 90.0, 75.0, 97.0, 69.0] {
            book.check(book.span("cpu_percent"), value, |rule, breached| {
                told.push((rule.name.clone(), breached, value))
            });
        }
        let told: Vec<(&str, bool, f64)> =
            told.iter().map(|(n, b, v)| (n.as_str(), *b, *v)).collect();
        assert_eq!(
            told,
            [
                ("cpu_high", true, 85.0),
                // 75 is above clear_below 70: still breached.
                ("cpu_very_high", true, 97.0),
                ("cpu_high", false, 69.0),
                ("cpu_very_high", false, 69.0),
            ]
        );
    }

    #[test]
    fn a_new_policy_keeps_breaches_by_name_and_answers_the_gone_ones() {
        let mut book = book(vec![
            rule("cpu_high", "cpu_percent", 80.0, None),
            rule("errors", "error_rate", 0.05, None),
        ]);
        book.check(book.span("cpu_percent"), 90.0, |_, _| {});
        book.check(book.span("error_rate"), 0.5, |_, _| {});
        let gone = book.replace(
            vec![
                rule("a_new_one", "a_metric", 1.0, None),
                rule("cpu_high", "cpu_percent", 85.0, None),
            ]
            .into(),
        );
        assert_eq!(
            gone.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(),
            ["errors"]
        );
        // cpu_high stays breached: 88 is above its new 85, so nothing is told.
        let mut told = 0;
        book.check(book.span("cpu_percent"), 88.0, |_, _| told += 1);
        assert_eq!(told, 0);
        book.check(book.span("cpu_percent"), 10.0, |_, breached| {
            assert!(!breached);
            told += 1
        });
        assert_eq!(told, 1);
    }
}
