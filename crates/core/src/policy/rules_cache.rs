//! Each pool's alert rules, worked out once per policy version and shared by every agent actor
//! of the pool: 10,000 agents holding their own copies of a pool's rules cost 40 MB.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::{AlertRule, Policy};

/// The rules of each pool asked for so far, sorted by metric.
#[derive(Default)]
pub struct RulesCache(Mutex<HashMap<String, Arc<[AlertRule]>>>);

impl RulesCache {
    /// The rules of `pool` under `policy`, sorted by metric so that a metric's rules are one
    /// range (stable: rules of one metric keep the policy's order).
    pub fn get(&self, policy: &Policy, pool: &str) -> Arc<[AlertRule]> {
        // A thread that panicked while filling the map leaves whole entries or none.
        let mut cache = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(rules) = cache.get(pool) {
            return rules.clone();
        }
        let mut rules = policy.rules_for_pool(pool);
        rules.sort_by(|a, b| a.metric.cmp(&b.metric));
        let rules: Arc<[AlertRule]> = rules.into();
        cache.insert(pool.to_string(), rules.clone());
        rules
    }
}

/// A copy starts empty: it may belong to a policy that is then changed.
impl Clone for RulesCache {
    fn clone(&self) -> Self {
        RulesCache::default()
    }
}

/// The cache is derived from the policy, so it never makes two policies differ.
impl PartialEq for RulesCache {
    fn eq(&self, _other: &Self) -> bool {
        true
    }
}

impl std::fmt::Debug for RulesCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RulesCache")
    }
}
