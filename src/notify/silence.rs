//! Silences, as Alertmanager has them: label matchers (exact or anchored regular
//! expressions) and a time window; an alert they match is not notified.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One label condition.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Matcher {
    /// The label, e.g. `pool`.
    pub name: String,
    /// The value, or a regular expression matching the whole value.
    pub value: String,
    /// Whether `value` is a regular expression.
    #[serde(default)]
    pub is_regex: bool,
    /// The anchored expression, compiled on first use and kept: a silence is matched
    /// against every alert on every pass (`None` inside when it does not compile).
    #[serde(skip)]
    compiled: std::sync::OnceLock<Option<regex::Regex>>,
}

impl PartialEq for Matcher {
    fn eq(&self, other: &Self) -> bool {
        (&self.name, &self.value, self.is_regex) == (&other.name, &other.value, other.is_regex)
    }
}

/// A silence as stored and shown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Silence {
    /// Its id.
    pub id: i64,
    /// Every matcher must match.
    pub matchers: Vec<Matcher>,
    /// From when, epoch milliseconds.
    pub starts_ms: i64,
    /// Until when, epoch milliseconds.
    pub ends_ms: i64,
    /// Why.
    pub comment: String,
    /// Who made it (from their token).
    pub created_by: String,
    /// When it was made, epoch milliseconds.
    pub created_ms: i64,
}

/// Why a matcher cannot be used.
#[derive(Debug, Clone, thiserror::Error)]
pub enum MatcherError {
    /// The label name is empty or blank.
    #[error("a matcher needs a label name")]
    NoName,
    /// The value is marked as a regular expression and does not compile.
    // The regex error is in the message, so it is not a `source` too: a chain would print it
    // twice.
    #[error("not a regular expression: {0}")]
    Regex(regex::Error),
}

impl Matcher {
    /// A matcher of label `name`: equal to `value`, or matching it as a whole when `is_regex`.
    pub fn new(name: impl Into<String>, value: impl Into<String>, is_regex: bool) -> Matcher {
        Matcher {
            name: name.into(),
            value: value.into(),
            is_regex,
            compiled: std::sync::OnceLock::new(),
        }
    }

    /// Checks the matcher can be used: a name, and a regular expression that compiles.
    pub fn validate(&self) -> Result<(), MatcherError> {
        if self.name.trim().is_empty() {
            return Err(MatcherError::NoName);
        }
        if self.is_regex {
            regex::Regex::new(&format!("^(?:{})$", self.value)).map_err(MatcherError::Regex)?;
        }
        Ok(())
    }

    /// Whether `labels` satisfy it (a missing label is the empty string, as in Alertmanager).
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        let value = labels.get(&self.name).map_or("", String::as_str);
        if self.is_regex {
            self.compiled
                .get_or_init(|| regex::Regex::new(&format!("^(?:{})$", self.value)).ok())
                .as_ref()
                .is_some_and(|re| re.is_match(value))
        } else {
            value == self.value
        }
    }
}

impl Silence {
    /// `active`, `pending` (not started) or `expired` at `now_ms`.
    pub fn state(&self, now_ms: i64) -> &'static str {
        if now_ms < self.starts_ms {
            "pending"
        } else if now_ms >= self.ends_ms {
            "expired"
        } else {
            "active"
        }
    }

    /// Whether it silences an alert with `labels` at `now_ms`.
    pub fn silences(&self, labels: &BTreeMap<String, String>, now_ms: i64) -> bool {
        self.state(now_ms) == "active" && self.matchers.iter().all(|m| m.matches(labels))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matchers_are_exact_or_anchored_regexes_within_the_window() {
        let labels: BTreeMap<String, String> = [("pool", "web"), ("rule", "cpu_high")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let silence = Silence {
            id: 1,
            matchers: vec![
                Matcher::new("pool", "web", false),
                Matcher::new("rule", "cpu_.*", true),
            ],
            starts_ms: 100,
            ends_ms: 200,
            comment: "deploy".into(),
            created_by: "ann".into(),
            created_ms: 0,
        };
        assert!(silence.silences(&labels, 150));
        assert!(!silence.silences(&labels, 99), "pending");
        assert!(!silence.silences(&labels, 200), "expired");
        let anchored = Matcher::new("rule", "cpu", true);
        assert!(
            !anchored.matches(&labels),
            "a regex matches the whole value"
        );
        assert!(Matcher::new("x", "(", true).validate().is_err());
        assert!(Matcher::new(" ", "a", false).validate().is_err());
        let absent = Matcher::new("agent", "", false);
        assert!(absent.matches(&labels), "a missing label is empty");
    }

    #[test]
    fn a_regex_is_compiled_once_and_kept_by_its_matcher() {
        let labels: BTreeMap<String, String> =
            [("rule".to_string(), "cpu_high".to_string())].into();
        let matcher = Matcher::new("rule", "cpu_.*", true);
        assert!(matcher.compiled.get().is_none());
        assert!(matcher.matches(&labels));
        let kept = matcher
            .compiled
            .get()
            .and_then(Option::as_ref)
            .map(|r| r as *const _);
        assert!(matcher.matches(&labels));
        let again = matcher
            .compiled
            .get()
            .and_then(Option::as_ref)
            .map(|r| r as *const _);
        assert_eq!(kept, again, "the same compiled expression");
        let broken = Matcher::new("rule", "(", true);
        assert!(
            !broken.matches(&labels),
            "an expression that does not compile matches nothing"
        );
    }
}
