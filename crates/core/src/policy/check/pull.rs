//! Checks of metric pulling: the static WebSocket targets (agent ids, pools that exist,
//! `ws://` URLs, no agent twice) and pools that ask to be pulled but have nothing to pull.

use std::collections::BTreeMap;

use super::{Problems, not_found};
use crate::policy::UnknownAgents;
use crate::policy::model::{Policy, PullProtocol};

pub(super) fn check_pull(policy: &Policy, problems: &mut Problems) {
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    for (index, target) in policy.ingest.websocket.iter().enumerate() {
        let item = format!("[{index}]");
        let at = |field: &'static str| ["ingest", "websocket", item.as_str(), field];
        let agent = target.agent.as_str();
        if agent.is_empty() || agent.chars().any(|c| c.is_whitespace() || c.is_control()) {
            problems.error(
                &at("agent"),
                format!("{agent:?} is not an agent id: empty, or with whitespace"),
            );
        } else if agent == "host" {
            problems.error(
                &at("agent"),
                "\"host\" is reserved for the controller's own host".into(),
            );
        } else if let Some(first) = seen.insert(agent, index) {
            problems.error(
                &at("agent"),
                format!("{agent:?} is already pulled by ingest.websocket[{first}]"),
            );
        }
        match policy.pools.get(&target.pool) {
            None => problems.error(
                &at("pool"),
                not_found("pool", &target.pool, policy.pools.keys()),
            ),
            Some(pool) if !pool.observe_only() => problems.warning(
                &at("pool"),
                format!(
                    "pool {:?} has a {} driver: its size will count an agent the driver does not run",
                    target.pool,
                    pool.driver.kind()
                ),
            ),
            Some(_) => {}
        }
        if let Err(error) = check_ws_url(&target.url) {
            problems.error(&at("url"), error.to_string());
        }
    }
    if !policy.ingest.websocket.is_empty() && policy.ingest.unknown_agents == UnknownAgents::Reject
    {
        problems.warning(
            &["ingest", "websocket"],
            "ingest.unknown_agents = \"reject\" refuses the samples of these agents: the \
             controller does not run them"
                .into(),
        );
    }
    for (name, pool) in &policy.pools {
        if pool.pull == PullProtocol::Websocket && pool.observe_only() {
            problems.warning(
                &["pools", name.as_str(), "pull"],
                "the pool has no driver, so its agents have no endpoint to pull from; list \
                 them under [[ingest.websocket]]"
                    .into(),
            );
        }
    }
}

/// Why a static target's URL is not one the pull client can reach.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum WsUrlError {
    /// A TLS WebSocket URL, which the pull client cannot open.
    #[error("{url:?}: wss:// is not supported (the pull client speaks plain ws://)")]
    Tls {
        /// The URL.
        url: String,
    },
    /// Not a WebSocket URL at all.
    #[error("{url:?} is not a ws:// URL")]
    NotWs {
        /// The URL.
        url: String,
    },
    /// Nothing between `ws://` and the path.
    #[error("{url:?} names no host")]
    NoHost {
        /// The URL.
        url: String,
    },
}

/// Why `url` is not a WebSocket URL the pull client can reach, if it is not.
fn check_ws_url(url: &str) -> Result<(), WsUrlError> {
    if url.starts_with("wss://") {
        return Err(WsUrlError::Tls { url: url.into() });
    }
    let Some(rest) = url.strip_prefix("ws://") else {
        return Err(WsUrlError::NotWs { url: url.into() });
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.is_empty() {
        return Err(WsUrlError::NoHost { url: url.into() });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::check_ws_url;
    use crate::policy::load::load_bare;

    const POOLS: &str = "[pools.external]\nmin_agents = 0\ndriver = { type = \"none\" }\n";

    /// The problems (errors, else warnings) of `POOLS` plus `text`, without file positions.
    fn problems(text: &str) -> Vec<String> {
        let text = format!("{POOLS}{text}");
        let lines: Vec<String> = match load_bare("p.toml", &text) {
            Ok(loaded) => loaded.warnings.iter().map(ToString::to_string).collect(),
            Err(error) => error.errors.iter().map(ToString::to_string).collect(),
        };
        lines
            .into_iter()
            .map(|l| {
                l.splitn(4, ':')
                    .nth(3)
                    .unwrap_or_default()
                    .trim()
                    .to_string()
            })
            .collect()
    }

    #[test]
    fn websocket_targets_are_checked() {
        let target = |agent: &str, pool: &str, url: &str| {
            format!(
                "[[ingest.websocket]]\nagent = \"{agent}\"\npool = \"{pool}\"\nurl = \"{url}\"\n"
            )
        };
        assert!(problems(&target("a-1", "external", "ws://127.0.0.1:9/metrics")).is_empty());
        assert_eq!(
            problems(&format!(
                "{}{}",
                target("a-1", "externl", "https://x/metrics"),
                target("a-1", "external", "ws://x/metrics")
            )),
            [
                "error: ingest.websocket[0].pool: no pool named \"externl\" (defined: external); did you mean `external`?",
                "error: ingest.websocket[0].url: \"https://x/metrics\" is not a ws:// URL",
                "error: ingest.websocket[1].agent: \"a-1\" is already pulled by ingest.websocket[0]",
            ]
        );
        assert_eq!(
            problems(
                "[pools.edge]\nmin_agents = 0\ndriver = { type = \"none\" }\npull = \"websocket\"\n"
            ),
            [
                "warning: pools.edge.pull: the pool has no driver, so its agents have no endpoint to pull from; list them under [[ingest.websocket]]"
            ]
        );
    }

    #[test]
    fn only_plain_websocket_urls_with_a_host_pass() {
        assert!(check_ws_url("ws://127.0.0.1:9100/metrics").is_ok());
        assert!(check_ws_url("ws://agent.internal/metrics").is_ok());
        assert!(check_ws_url("wss://agent.internal/metrics").is_err());
        assert!(check_ws_url("http://agent.internal/metrics").is_err());
        assert!(check_ws_url("ws:///metrics").is_err());
    }
}
