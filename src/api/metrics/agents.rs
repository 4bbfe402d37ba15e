//! The agent metric lines of `GET /metrics`, kept between scrapes: a scrape writes again only
//! the lines of agents whose readings changed since the last one and copies the others from
//! the page it wrote last, and a scrape of a fleet where nothing changed writes nothing.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, Weak};

use bytes::Bytes;

use super::{Page, exported_name, exported_names, help_for};
use crate::actors::fleet::AgentView;
use crate::domain::fleet::{FleetAgents, Readings, ReadingsId};

/// The lines of every agent metric, kept between scrapes.
#[derive(Debug, Default, Clone)]
pub struct ScrapeCache(Arc<Mutex<Scraped>>);

/// A page section in pieces.
type Chunks = Vec<Bytes>;

/// What the last scrape wrote.
#[derive(Debug, Default)]
struct Scraped {
    /// The agents list it was given and the page section it wrote for them, in chunks.
    whole: Option<(Weak<Vec<Arc<AgentView>>>, Chunks)>,
    /// Whose lines the families hold, in the list's order.
    agents: Vec<Written>,
    /// Each family's lines: one per agent that has its metric, in the list's order.
    families: Vec<Family>,
}

/// An agent as its lines were written.
#[derive(Debug)]
struct Written {
    id: String,
    pool: String,
    /// The readings they were written from.
    of: ReadingsId,
}

/// One metric family: the metric it exports (its name and factor follow from the metric)
/// and every agent's line, contiguous.
#[derive(Debug)]
struct Family {
    /// The metric it exports.
    metric: String,
    /// The lines, in the agents' order (sent as they are, not copied into a page).
    text: Bytes,
    /// Where each agent's line ends in `text` (where the one before ends, if it has none).
    ends: Vec<usize>,
}

impl Family {
    /// The line of the `index`th agent, empty if it has none.
    fn line(&self, index: usize) -> &[u8] {
        let start = index.checked_sub(1).map_or(0, |before| self.ends[before]);
        &self.text[start..self.ends[index]]
    }

    /// The text in pieces of about `CHUNK` bytes, cut at line ends, sharing its memory.
    fn chunks(&self, out: &mut Vec<Bytes>) {
        let mut start = 0;
        let mut last_end = 0;
        for &end in &self.ends {
            if end - start > CHUNK && last_end > start {
                out.push(self.text.slice(start..last_end));
                start = last_end;
            }
            last_end = end;
        }
        if last_end > start {
            out.push(self.text.slice(start..last_end));
        }
    }
}

/// The most bytes of one body chunk but for a single longer line: small enough that the
/// server's write buffer is kept and reused between chunks rather than grown and dropped.
const CHUNK: usize = 64 * 1024;

impl ScrapeCache {
    /// The lines of `agents`, in chunks to send in turn, written only for agents that changed.
    pub fn agent_lines(&self, agents: &FleetAgents) -> Vec<Bytes> {
        let lock = || self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let last = {
            let mut scraped = lock();
            // A `Weak` keeps the allocation, so no later list of agents can share its address.
            if let Some((of, lines)) = &scraped.whole
                && std::ptr::eq(of.as_ptr(), Arc::as_ptr(agents))
            {
                return lines.clone();
            }
            // Written without the lock: a scrape at the same time finds nothing kept and
            // writes all its lines afresh.
            std::mem::take(&mut *scraped)
        };
        let now = families_of(agents, last);
        let mut lines = Vec::new();
        for family in &now.families {
            let mut page = Page::default();
            let (exported, factor) = exported_name(&family.metric);
            let name = format!("swarmpilot_agent_{exported}");
            let help = help_for("each agent", &family.metric, factor);
            page.family(&name, "gauge", &help);
            lines.push(Bytes::from(page.out));
            family.chunks(&mut lines);
        }
        *lock() = Scraped {
            whole: Some((Arc::downgrade(agents), lines.clone())),
            ..now
        };
        lines
    }
}

/// The families of `agents`, each agent's lines copied from `last` when its readings and
/// pool are the ones they were written from.
fn families_of(agents: &[Arc<AgentView>], mut last: Scraped) -> Scraped {
    let position: HashMap<&str, usize> = last
        .agents
        .iter()
        .enumerate()
        .map(|(at, written)| (written.id.as_str(), at))
        .collect();
    // Where each agent's lines were, if they still hold.
    let kept: Vec<Option<usize>> = agents
        .iter()
        .map(|agent| {
            let at = *position.get(agent.id.as_str())?;
            let written = &last.agents[at];
            (written.of.is(&agent.metrics) && written.pool == agent.pool).then_some(at)
        })
        .collect();
    drop(position);
    // Agents mostly report the same metrics: each run of agents with the same names is
    // looked at once.
    let mut sets: Vec<&Readings> = Vec::new();
    for agent in agents {
        if sets
            .last()
            .is_none_or(|last| !agent.metrics.keys().eq(last.keys()))
        {
            sets.push(&agent.metrics);
        }
    }
    let families = exported_names(sets.iter().flat_map(|metrics| metrics.keys()))
        .into_iter()
        .map(|(exported, (metric, factor))| {
            let before = last.families.iter().find(|f| f.metric == metric);
            let name = format!("swarmpilot_agent_{exported}");
            // Bytes, not a string: a kept line is copied as it is, without a UTF-8 check.
            let mut text = Vec::with_capacity(before.map_or(0, |f| f.text.len() + 1024));
            let mut line = Page::default();
            let mut ends = Vec::with_capacity(agents.len());
            for (agent, kept) in agents.iter().zip(&kept) {
                match (before, kept) {
                    (Some(before), Some(at)) => text.extend_from_slice(before.line(*at)),
                    _ => {
                        if let Some(value) = agent.metrics.get(metric) {
                            let labels = [("agent", agent.id.as_str()), ("pool", &agent.pool)];
                            line.out.clear();
                            line.sample(&name, &labels, value * factor);
                            text.extend_from_slice(line.out.as_bytes());
                        }
                    }
                }
                ends.push(text.len());
            }
            Family {
                metric: metric.to_string(),
                text: Bytes::from(text),
                ends,
            }
        })
        .collect();
    let mut written: Vec<Option<Written>> = last.agents.drain(..).map(Some).collect();
    let written_now = agents
        .iter()
        .zip(&kept)
        .map(
            |(agent, kept)| match kept.and_then(|at| written[at].take()) {
                Some(written) => written,
                None => Written {
                    id: agent.id.clone(),
                    pool: agent.pool.clone(),
                    of: agent.metrics.identity(),
                },
            },
        )
        .collect();
    Scraped {
        whole: None,
        agents: written_now,
        families,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::fleet::FleetSnapshot;

    fn agent(id: &str, pool: &str, metrics: &[(&str, f64)]) -> AgentView {
        let mut agent = AgentView::blank(id, pool);
        agent.metrics = metrics.iter().map(|(m, v)| (m.to_string(), *v)).collect();
        agent
    }

    /// The section the cache answers, in one piece.
    fn joined(cache: &ScrapeCache, agents: &FleetAgents) -> String {
        String::from_utf8(cache.agent_lines(agents).concat()).unwrap()
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
        let list = FleetSnapshot::of(agents.clone()).agents;
        let chunks = cache.agent_lines(&list);
        let first = String::from_utf8(chunks.concat()).unwrap();
        assert_eq!(first, fresh(&agents));
        assert!(first.starts_with("# HELP swarmpilot_agent_cpu "));
        // The same list: the same bytes, not written again.
        let again = cache.agent_lines(&list);
        assert!(
            again
                .iter()
                .zip(&chunks)
                .all(|(a, b)| a.as_ptr() == b.as_ptr())
        );

        // One agent's reading changes, another leaves, one joins, one moves pool.
        let kept = agents[1].metrics.identity();
        agents[0].metrics.set("cpu", 9.0);
        agents.remove(2);
        agents.push(agent("d", "batch", &[("queue", 1.0)]));
        agents[1].pool = "batch".into();
        let list = FleetSnapshot::of(agents.clone()).agents;
        let second = joined(&cache, &list);
        assert_eq!(second, fresh(&agents));
        assert!(second.contains("agent=\"a\",pool=\"web\"} 9\n"));
        assert!(!second.contains("agent=\"c\""));
        assert!(kept.is(&agents[1].metrics), "b's readings did not change");

        // A value set back: new readings, and the line follows them; an agent ahead of the
        // kept ones moves them down the list.
        agents[0].metrics = Readings::default();
        agents[0].metrics.insert("cpu".into(), 1.0);
        agents.insert(0, agent("a0", "web", &[("cpu", 4.0), ("queue", 2.0)]));
        let list = FleetSnapshot::of(agents.clone()).agents;
        assert_eq!(joined(&cache, &list), fresh(&agents));
        assert_eq!(cache.0.lock().unwrap().agents.len(), 4, "c is forgotten");
        assert_eq!(
            cache.0.lock().unwrap().families.len(),
            2,
            "only cpu and queue are left"
        );

        // One name, another metric: an unchanged agent's line of the old metric goes.
        agents.push(agent("x", "web", &[("latency_seconds", 0.5)]));
        let list = FleetSnapshot::of(agents.clone()).agents;
        assert_eq!(joined(&cache, &list), fresh(&agents));
        agents.push(agent("y", "web", &[("latency_ms", 20.0)]));
        let list = FleetSnapshot::of(agents.clone()).agents;
        let flipped = joined(&cache, &list);
        assert_eq!(flipped, fresh(&agents));
        assert!(!flipped.contains("agent=\"x\""));
    }

    #[test]
    fn a_family_goes_out_in_pieces_cut_at_line_ends() {
        let line = "x".repeat(1000) + "\n";
        let family = Family {
            metric: "x".into(),
            text: Bytes::from(line.repeat(200) + &"y".repeat(CHUNK * 2) + "\n"),
            ends: (1..=200)
                .map(|n| n * 1001)
                .chain([200 * 1001 + CHUNK * 2 + 1])
                .collect(),
        };
        let mut chunks = Vec::new();
        family.chunks(&mut chunks);
        assert_eq!(chunks.concat(), family.text);
        assert_eq!(
            chunks.len(),
            5,
            "65 lines, 65, 65, 5, and the long line alone"
        );
        assert!(chunks.iter().all(|c| c.ends_with(b"\n")));
        assert!(chunks[..4].iter().all(|c| c.len() <= CHUNK));
        assert_eq!(chunks[4].len(), CHUNK * 2 + 1);
    }

    #[test]
    fn an_unchanged_agents_line_is_copied_from_where_it_was() {
        let kept = agent("b", "web", &[("cpu", 2.0)]);
        let last = Scraped {
            whole: None,
            agents: vec![Written {
                id: "b".into(),
                pool: "web".into(),
                of: kept.metrics.identity(),
            }],
            families: vec![Family {
                metric: "cpu".into(),
                text: Bytes::from_static(b"KEPT\n"),
                ends: vec![5],
            }],
        };
        let now = families_of(
            &[Arc::new(agent("a", "web", &[("cpu", 1.0)])), Arc::new(kept)],
            last,
        );
        assert_eq!(
            now.families[0].text,
            "swarmpilot_agent_cpu{agent=\"a\",pool=\"web\"} 1\nKEPT\n"
        );
        assert_eq!(now.families[0].line(1), b"KEPT\n");
        assert_eq!(
            now.agents.iter().map(|w| &w.id[..]).collect::<Vec<_>>(),
            ["a", "b"]
        );
    }
}
