//! The agent metric lines of `GET /metrics`, kept between scrapes: a scrape writes again only
//! the lines of agents whose readings changed since the last one, and a scrape of a fleet
//! where nothing changed writes none.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, Weak};

use bytes::Bytes;

use super::{Page, exported_names, help_for};
use crate::actors::fleet::AgentView;
use crate::domain::fleet::ReadingsId;

/// The lines of every agent metric, kept between scrapes.
#[derive(Debug, Default, Clone)]
pub struct ScrapeCache(Arc<Mutex<Scraped>>);

/// What the last scrape wrote.
#[derive(Debug, Default)]
struct Scraped {
    /// The agents list it was given and the page section it wrote for them.
    whole: Option<(Weak<Vec<AgentView>>, Bytes)>,
    /// Each agent's lines, by agent id.
    agents: HashMap<String, AgentLines>,
}

/// One agent's lines, written from one version of its readings.
#[derive(Debug)]
struct AgentLines {
    /// The readings they were written from.
    of: ReadingsId,
    /// The pool they name.
    pool: String,
    /// One line for each metric, in the readings' (name) order.
    text: String,
    /// Where each metric's line ends in `text`.
    ends: Vec<usize>,
}

impl AgentLines {
    fn write(agent: &AgentView) -> AgentLines {
        let mut page = Page::default();
        let mut ends = Vec::with_capacity(agent.metrics.len());
        for (metric, value) in agent.metrics.iter() {
            let (exported, factor) = super::names::exported_name(metric);
            page.out.push_str("swarmpilot_agent_");
            page.sample(
                &exported,
                &[("agent", &agent.id), ("pool", &agent.pool)],
                value * factor,
            );
            ends.push(page.out.len());
        }
        AgentLines {
            of: agent.metrics.identity(),
            pool: agent.pool.clone(),
            text: page.out,
            ends,
        }
    }

    fn is_for(&self, agent: &AgentView) -> bool {
        self.of.is(&agent.metrics) && self.pool == agent.pool
    }

    /// The line of the `index`th metric.
    fn line(&self, index: usize) -> &str {
        let start = index.checked_sub(1).map_or(0, |before| self.ends[before]);
        &self.text[start..self.ends[index]]
    }
}

impl ScrapeCache {
    /// The lines of `agents`: kept whole while the list is the one last scraped, else
    /// assembled from each agent's lines, written again only for agents that changed.
    pub(super) fn agent_lines(&self, agents: &Arc<Vec<AgentView>>) -> Bytes {
        let lock = || self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let mut kept = {
            let mut scraped = lock();
            // A `Weak` keeps the allocation, so no later list of agents can share its address.
            if let Some((of, lines)) = &scraped.whole
                && std::ptr::eq(of.as_ptr(), Arc::as_ptr(agents))
            {
                return lines.clone();
            }
            // Written without the lock: a scrape at the same time writes its own lines.
            std::mem::take(&mut scraped.agents)
        };
        let mut now = HashMap::with_capacity(agents.len());
        for agent in agents.iter() {
            let lines = match kept.remove(&agent.id) {
                Some(lines) if lines.is_for(agent) => lines,
                _ => AgentLines::write(agent),
            };
            now.insert(agent.id.clone(), lines);
        }
        let lines = Bytes::from(assemble(agents, &now));
        let mut scraped = lock();
        scraped.agents = now;
        scraped.whole = Some((Arc::downgrade(agents), lines.clone()));
        lines
    }
}

/// Every metric of `agents`, one family per exported name, from each agent's lines.
fn assemble(agents: &[AgentView], lines: &HashMap<String, AgentLines>) -> String {
    let mut page = Page::default();
    let size: usize = lines.values().map(|lines| lines.text.len()).sum();
    page.out.reserve(size + 4096);
    let agent_metrics = exported_names(agents.iter().flat_map(|a| a.metrics.keys()));
    for (exported, (metric, factor)) in agent_metrics {
        let name = format!("swarmpilot_agent_{exported}");
        page.family(&name, "gauge", &help_for("each agent", metric, factor));
        for agent in agents {
            let Some(index) = agent.metrics.keys().position(|m| m == metric) else {
                continue;
            };
            page.out.push_str(lines[&agent.id].line(index));
        }
    }
    page.out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::fleet::Readings;

    fn agent(id: &str, pool: &str, metrics: &[(&str, f64)]) -> AgentView {
        let mut agent = AgentView::blank(id, pool);
        agent.metrics = metrics.iter().map(|(m, v)| (m.to_string(), *v)).collect();
        agent
    }

    /// The section as it is written with nothing kept.
    fn fresh(agents: &[AgentView]) -> String {
        let mut page = Page::default();
        for (exported, (metric, factor)) in
            exported_names(agents.iter().flat_map(|a| a.metrics.keys()))
        {
            let name = format!("swarmpilot_agent_{exported}");
            page.family(&name, "gauge", &help_for("each agent", metric, factor));
            for agent in agents {
                if let Some(value) = agent.metrics.get(metric) {
                    page.sample(
                        &name,
                        &[("agent", &agent.id), ("pool", &agent.pool)],
                        value * factor,
                    );
                }
            }
        }
        page.out
    }

    #[test]
    fn kept_lines_give_the_page_written_afresh_and_follow_every_change() {
        let cache = ScrapeCache::default();
        let mut agents = vec![
            agent("a", "web", &[("cpu", 1.0), ("response_time_ms", 250.0)]),
            agent("b\"q", "web", &[("cpu", 2.5), ("queue", 3.0)]),
            // Two names exported as one: the first in name order keeps it.
            agent(
                "c",
                "batch",
                &[("latency_ms", 5.0), ("latency_seconds", 7.0)],
            ),
        ];
        let list = Arc::new(agents.clone());
        let first = cache.agent_lines(&list);
        assert_eq!(first, fresh(&agents).as_bytes());
        assert!(first.starts_with(b"# HELP swarmpilot_agent_cpu "));
        // The same list: the same bytes, not written again.
        assert_eq!(cache.agent_lines(&list).as_ptr(), first.as_ptr());

        // One agent's reading changes, another leaves, one joins, one moves pool.
        let kept = agents[1].metrics.identity();
        agents[0].metrics.set("cpu", 9.0);
        agents.remove(2);
        agents.push(agent("d", "batch", &[("queue", 1.0)]));
        agents[1].pool = "batch".into();
        let list = Arc::new(agents.clone());
        let second = cache.agent_lines(&list);
        assert_eq!(second, fresh(&agents).as_bytes());
        assert!(String::from_utf8_lossy(&second).contains("agent=\"a\",pool=\"web\"} 9\n"));
        assert!(!String::from_utf8_lossy(&second).contains("agent=\"c\""));
        assert!(kept.is(&agents[1].metrics), "b's readings did not change");

        // A value set back: new readings, and the line follows them.
        agents[0].metrics = Readings::default();
        agents[0].metrics.insert("cpu".into(), 1.0);
        let list = Arc::new(agents.clone());
        assert_eq!(cache.agent_lines(&list), fresh(&agents).as_bytes());
        assert_eq!(cache.0.lock().unwrap().agents.len(), 3, "c is forgotten");
    }
}
