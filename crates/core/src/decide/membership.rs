//! Which pool an agent met for the first time through its samples joins: the pool it names
//! when that pool is observe-only, allows it, or is its policy-declared target; a foreign
//! agent naming a driver-run pool joins the default observe-only pool or is refused; and
//! whether there is room for it (`ingest.max_agents` in all, the pool's `max_agents`).

use std::collections::HashMap;

use crate::policy::{ForeignAgents, Policy, UnknownAgents};

/// Why an agent met for the first time through its samples is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdmitRefusal {
    /// The policy takes only the agents the controller runs.
    #[error("unknown agent {agent:?}: the policy refuses agents the controller does not run")]
    UnknownAgent {
        /// Agent id.
        agent: String,
    },
    /// The pool the agent named, or the default pool, is not in the policy.
    #[error("no pool {pool:?} in the policy for agent {agent:?}")]
    NoPool {
        /// The pool.
        pool: String,
        /// Agent id.
        agent: String,
    },
    /// The pool is run by a driver that did not start the agent, and does not allow it.
    #[error(
        "agent {agent:?} may not join pool {pool:?}: its driver did not start it and \
         pools.{pool}.allow_agents does not list it"
    )]
    Foreign {
        /// The pool.
        pool: String,
        /// Agent id.
        agent: String,
    },
    /// The controller watches as many agents as the policy allows.
    #[error(
        "agent {agent:?} refused: {limit} agents already, the most policy ingest.max_agents allows"
    )]
    FleetFull {
        /// The policy's limit.
        limit: usize,
        /// Agent id.
        agent: String,
    },
    /// The token brought as many new agents within a minute as the policy allows.
    #[error(
        "agent {agent:?} refused: {by} added {limit} agents within a minute, the most policy \
         ingest.max_new_agents_per_minute_per_token allows"
    )]
    TooManyJoins {
        /// The token holder.
        by: String,
        /// The policy's limit.
        limit: u32,
        /// Agent id.
        agent: String,
    },
    /// The pool has as many agents as the policy allows.
    #[error(
        "agent {agent:?} refused: pool {pool:?} has {limit} agents, the most \
         pools.{pool}.max_agents allows"
    )]
    PoolFull {
        /// The pool.
        pool: String,
        /// Its limit.
        limit: usize,
        /// Agent id.
        agent: String,
    },
}

/// How many agents the controller has, in all and by pool.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headcount {
    total: usize,
    by_pool: HashMap<String, usize>,
}

impl Headcount {
    /// One more agent in `pool`.
    pub fn join(&mut self, pool: &str) {
        self.total += 1;
        *self.by_pool.entry(pool.to_string()).or_default() += 1;
    }

    /// One agent fewer in `pool`.
    pub fn leave(&mut self, pool: &str) {
        self.total = self.total.saturating_sub(1);
        if let Some(count) = self.by_pool.get_mut(pool) {
            *count -= 1;
            if *count == 0 {
                self.by_pool.remove(pool);
            }
        }
    }

    /// Agents in `pool`.
    pub fn in_pool(&self, pool: &str) -> usize {
        self.by_pool.get(pool).copied().unwrap_or(0)
    }

    /// Whether `agent` may join `pool` under `policy`'s limits: `ingest.max_agents` in all,
    /// and an observe-only pool's `max_agents` (a driver's pool is sized by its driver; the
    /// agents its `allow_agents` lets in come on top).
    pub fn room(&self, policy: &Policy, pool: &str, agent: &str) -> Result<(), AdmitRefusal> {
        let limit = policy.ingest.max_agents;
        if self.total >= limit {
            return Err(AdmitRefusal::FleetFull {
                limit,
                agent: agent.to_string(),
            });
        }
        if let Some(config) = policy.pool(pool).filter(|config| config.observe_only()) {
            let limit = policy.max_agents(config);
            if self.in_pool(pool) >= limit {
                return Err(AdmitRefusal::PoolFull {
                    pool: pool.to_string(),
                    limit,
                    agent: agent.to_string(),
                });
            }
        }
        Ok(())
    }
}

/// Where an admitted agent goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
    /// It joins the pool it named (or the default pool when it named none).
    Join(String),
    /// It named a driver-run pool that does not take it; it is watched in this observe-only
    /// pool instead.
    Observed {
        /// The pool it named.
        named: String,
        /// The pool it joins.
        pool: String,
    },
}

/// Decides where `agent`, whose samples named `named_pool`, joins under `policy`.
pub fn admit(
    policy: &Policy,
    agent: &str,
    named_pool: Option<&str>,
) -> Result<Admission, AdmitRefusal> {
    let ingest = &policy.ingest;
    if ingest.unknown_agents == UnknownAgents::Reject {
        return Err(AdmitRefusal::UnknownAgent {
            agent: agent.to_string(),
        });
    }
    let name = named_pool.unwrap_or(&ingest.default_pool);
    let Some(pool) = policy.pools.get(name) else {
        return Err(AdmitRefusal::NoPool {
            pool: name.to_string(),
            agent: agent.to_string(),
        });
    };
    if pool.observe_only() || pool.allows(agent) || declared(policy, name, agent) {
        return Ok(Admission::Join(name.to_string()));
    }
    let foreign = || AdmitRefusal::Foreign {
        pool: name.to_string(),
        agent: agent.to_string(),
    };
    if ingest.foreign_agents == ForeignAgents::Reject {
        return Err(foreign());
    }
    match policy.pools.get(&ingest.default_pool) {
        Some(default) if default.observe_only() => Ok(Admission::Observed {
            named: name.to_string(),
            pool: ingest.default_pool.clone(),
        }),
        _ => Err(foreign()),
    }
}

/// True when the policy itself assigns `agent` to `pool` as a scrape or WebSocket target.
fn declared(policy: &Policy, pool: &str, agent: &str) -> bool {
    let ingest = &policy.ingest;
    let scraped = ingest
        .scrape
        .iter()
        .any(|t| t.agent == agent && t.pool.as_deref().unwrap_or(&ingest.default_pool) == pool);
    let pulled = ingest
        .websocket
        .iter()
        .any(|t| t.agent == agent && t.pool == pool);
    scraped || pulled
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{DriverConfig, PoolPolicy};

    fn policy(foreign: ForeignAgents, with_external: bool) -> Policy {
        let text = format!(
            "[pools.worker]\nallow_agents = [\"edge-*\"]\n\
             [ingest]\nforeign_agents = \"{}\"\n{}",
            match foreign {
                ForeignAgents::Observe => "observe",
                ForeignAgents::Reject => "reject",
            },
            if with_external {
                "[pools.external]\ndriver = { type = \"none\" }\n"
            } else {
                ""
            }
        );
        toml::from_str(&text).unwrap()
    }

    #[test]
    fn only_allowed_or_declared_agents_join_a_driver_run_pool() {
        let observe = policy(ForeignAgents::Observe, true);
        let reject = policy(ForeignAgents::Reject, true);
        let no_default = policy(ForeignAgents::Observe, false);
        let join = |pool: &str| Ok(Admission::Join(pool.to_string()));
        let observed = Ok(Admission::Observed {
            named: "worker".into(),
            pool: "external".into(),
        });
        let foreign = Err(AdmitRefusal::Foreign {
            pool: "worker".into(),
            agent: "fake-1".into(),
        });
        for (policy, agent, named, expected) in [
            (&observe, "fake-1", Some("worker"), observed.clone()),
            (&observe, "edge-3", Some("worker"), join("worker")),
            (&observe, "fake-1", None, join("external")),
            (&observe, "fake-1", Some("external"), join("external")),
            (&reject, "fake-1", Some("worker"), foreign.clone()),
            (&reject, "edge-3", Some("worker"), join("worker")),
            (&no_default, "fake-1", Some("worker"), foreign),
        ] {
            assert_eq!(admit(policy, agent, named), expected, "{agent} {named:?}");
        }
        assert!(matches!(
            admit(&observe, "x", Some("nope")),
            Err(AdmitRefusal::NoPool { .. })
        ));
    }

    #[test]
    fn a_scrape_target_the_policy_assigns_to_a_driver_run_pool_joins_it() {
        let mut policy = policy(ForeignAgents::Reject, false);
        policy.ingest.scrape = vec![
            toml::from_str(
                "url = \"http://127.0.0.1:1/metrics\"\nagent = \"db-1\"\npool = \"worker\"\n\
                 metrics = []",
            )
            .unwrap(),
        ];
        assert_eq!(
            admit(&policy, "db-1", Some("worker")),
            Ok(Admission::Join("worker".into()))
        );
        assert!(admit(&policy, "db-2", Some("worker")).is_err());
        let observe_only = PoolPolicy {
            driver: DriverConfig::None,
            ..policy.pools["worker"].clone()
        };
        policy.pools.insert("worker".into(), observe_only);
        assert!(admit(&policy, "db-2", Some("worker")).is_ok());
    }

    #[test]
    fn joins_stop_at_the_fleet_and_pool_limits() {
        let mut policy: Policy = toml::from_str(
            "[pools.external]\ndriver = { type = \"none\" }\nmax_agents = 2\n\
             [pools.edge]\ndriver = { type = \"none\" }\nmax_agents = 5\n\
             [ingest]\nmax_agents = 3\n",
        )
        .unwrap();
        let mut count = Headcount::default();
        count.join("external");
        assert_eq!(count.room(&policy, "external", "a"), Ok(()));
        count.join("external");
        assert_eq!(
            count.room(&policy, "external", "a"),
            Err(AdmitRefusal::PoolFull {
                pool: "external".into(),
                limit: 2,
                agent: "a".into()
            })
        );
        assert_eq!(count.room(&policy, "edge", "a"), Ok(()));
        count.join("edge");
        let full = count.room(&policy, "edge", "a").unwrap_err();
        assert!(full.to_string().contains("ingest.max_agents"), "{full}");
        count.leave("external");
        assert_eq!(count.in_pool("external"), 1);
        assert_eq!(count.room(&policy, "edge", "a"), Ok(()));
        policy.ingest.max_agents = 1;
        assert!(count.room(&policy, "edge", "a").is_err());
        // A driver's pool takes the agents its allow-list lets in beyond its size.
        let policy: Policy = toml::from_str("[pools.worker]\nmax_agents = 1\n").unwrap();
        let mut count = Headcount::default();
        count.join("worker");
        assert_eq!(count.room(&policy, "worker", "edge-1"), Ok(()));
    }
}
