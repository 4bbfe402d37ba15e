//! Checks that span fields and files: ranges that depend on each other, references to pools,
//! profiles, channels and secrets, and conflicting rules. Every problem is reported; warnings
//! (suspicious but legal) are kept apart from errors.

use std::collections::{BTreeMap, HashSet};

use super::environment::Environment;
use super::model::{DriverConfig, Policy};
use crate::domain::ActionKind;

mod auth;
mod channels;
mod genai;
mod pull;
mod scrape;

/// How bad a problem is.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Suspicious but legal: the policy still loads.
    Warning,
    /// The policy does not load.
    Error,
}

/// One semantic problem, with the path of the field it is about.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    /// Error or warning.
    pub severity: Severity,
    /// Path segments of the field: keys, and `[i]` for array items.
    pub path: Vec<String>,
    /// What is wrong.
    pub message: String,
}

struct Problems(Vec<Problem>);

impl Problems {
    fn error(&mut self, path: &[&str], message: String) {
        self.push(Severity::Error, path, message);
    }

    fn warning(&mut self, path: &[&str], message: String) {
        self.push(Severity::Warning, path, message);
    }

    fn push(&mut self, severity: Severity, path: &[&str], message: String) {
        self.0.push(Problem {
            severity,
            path: path.iter().map(ToString::to_string).collect(),
            message,
        });
    }
}

/// Every semantic problem of a merged policy. `env` answers whether an environment variable
/// is set, so references to secrets can be checked (and tests need not touch the process
/// environment).
pub fn check(policy: &Policy, env: &dyn Environment) -> Vec<Problem> {
    let mut problems = Problems(Vec::new());
    check_global(policy, env, &mut problems);
    check_pools(policy, env, &mut problems);
    check_ingest(policy, &mut problems);
    auth::check_all(policy, env, &mut problems);
    pull::check_pull(policy, &mut problems);
    check_profiles(policy, &mut problems);
    check_alerts(policy, &mut problems);
    channels::check_routes_and_channels(policy, env, &mut problems);
    check_automation(policy, &mut problems);
    genai::check_genai(policy, &mut problems);
    genai::check_concurrency(policy, &mut problems);
    check_store(policy, env, &mut problems);
    problems.0
}

fn check_store(policy: &Policy, env: &dyn Environment, problems: &mut Problems) {
    let store = &policy.store;
    let password = store.password_env.is_some() || store.password_file.is_some();
    match &store.url {
        Some(url) => {
            let url_field = &["store", "url"];
            if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
                problems.error(
                    url_field,
                    "is not a PostgreSQL URL (postgres://user@host:port/db)".into(),
                );
            } else if url_has_password(url) {
                problems.error(
                    url_field,
                    "carries a password: secrets are never inline; name it by \
                     store.password_env or store.password_file"
                        .into(),
                );
            } else if url.contains("sslmode=require") || url.contains("sslmode=verify") {
                problems.error(
                    url_field,
                    "asks for TLS, which the PostgreSQL store does not speak yet: reach the \
                     server on loopback, a Unix socket or a private network"
                        .into(),
                );
            } else if !url_is_local(url) {
                problems.warning(
                    url_field,
                    "the connection to PostgreSQL is not encrypted (no TLS yet): keep it on \
                     a private network"
                        .into(),
                );
            }
            if password {
                secret(
                    problems,
                    &["store"],
                    "password",
                    store.password_env.as_deref(),
                    store.password_file.as_deref(),
                    env,
                );
            }
        }
        None if password => problems.error(
            &["store", "url"],
            "a password is named but no url: the SQLite store needs none".into(),
        ),
        None => {}
    }
    if let Some(lease) = &store.kubernetes_lease {
        let at = |field: &'static str| ["store", "kubernetes_lease", field];
        if store.url.is_none() {
            problems.error(
                &at("name"),
                "a leader election needs a shared store: set store.url to a PostgreSQL database"
                    .into(),
            );
        }
        if !is_kubernetes_name(&lease.name, 253) {
            problems.error(
                &at("name"),
                format!(
                    "{:?} is not a Kubernetes object name (lowercase letters, digits, `-` and `.`)",
                    lease.name
                ),
            );
        }
        if let Some(namespace) = &lease.namespace
            && (!is_kubernetes_name(namespace, 63) || namespace.contains('.'))
        {
            problems.error(
                &at("namespace"),
                format!("{namespace:?} is not a namespace name (lowercase letters, digits and `-`, at most 63)"),
            );
        }
        if let Some(server) = &lease.api_server
            && !(server.starts_with("http://") || server.starts_with("https://"))
        {
            problems.error(
                &at("api_server"),
                format!("{server:?} is not an http:// or https:// URL"),
            );
        }
        if let Some(file) = &lease.kubeconfig
            && !env.file_exists(file)
        {
            problems.warning(
                &at("kubeconfig"),
                format!("kubeconfig {file} does not exist here"),
            );
        }
    }
}

/// The user, host and port part of a URL: between `://` and the path or query.
fn authority(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    rest.split(['/', '?']).next().unwrap_or("")
}

/// Whether the URL's server is on this machine: loopback, or a Unix socket.
fn url_is_local(url: &str) -> bool {
    let host_port = authority(url)
        .rsplit_once('@')
        .map_or(authority(url), |(_, h)| h);
    let host = host_port
        .strip_prefix('[')
        .and_then(|h| h.split_once(']'))
        .map_or_else(|| host_port.split(':').next().unwrap_or(""), |(h, _)| h);
    host.is_empty()
        || host.starts_with("%2F")
        || host.starts_with("%2f")
        || host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Whether `postgres://user:password@host/...` carries a password.
fn url_has_password(url: &str) -> bool {
    authority(url)
        .rsplit_once('@')
        .is_some_and(|(user, _)| user.contains(':'))
        || url.contains("password=")
}

fn check_global(policy: &Policy, env: &dyn Environment, problems: &mut Problems) {
    let global = &policy.global;
    let interval = global.sampling_interval_secs;
    if !(1..=10).contains(&interval) {
        problems.error(
            &["global", "sampling_interval_secs"],
            format!("{interval} is outside 1-10 seconds"),
        );
    }
    if global.heartbeat_timeout_secs < 2 * interval {
        problems.warning(
            &["global", "heartbeat_timeout_secs"],
            format!(
                "{} s is less than two sampling intervals ({} s): healthy agents may be declared offline",
                global.heartbeat_timeout_secs,
                2 * interval
            ),
        );
    }
    if let Some(listen) = &global.listen
        && listen.parse::<std::net::SocketAddr>().is_err()
    {
        problems.error(
            &["global", "listen"],
            format!("{listen:?} is not an address like 127.0.0.1:8080"),
        );
    }
    let mut names = HashSet::new();
    for (index, token) in global.tokens.iter().enumerate() {
        let item = format!("[{index}]");
        let path = ["global", "tokens", item.as_str()];
        if !names.insert(token.name.as_str()) {
            problems.error(
                &[&path[..], &["name"]].concat(),
                format!("token name {:?} is used twice", token.name),
            );
        }
        secret(
            problems,
            &path,
            "token",
            token.token_env.as_deref(),
            token.token_file.as_deref(),
            env,
        );
    }
}

/// A secret must be named exactly once, by an environment variable that is set or a file
/// that exists.
fn secret(
    problems: &mut Problems,
    path: &[&str],
    what: &str,
    env_name: Option<&str>,
    file: Option<&str>,
    env: &dyn Environment,
) {
    let env_field = format!("{what}_env");
    let file_field = format!("{what}_file");
    match (env_name, file) {
        (None, None) => problems.error(
            path,
            format!("set `{env_field}` or `{file_field}`; secrets are never inline"),
        ),
        (Some(_), Some(_)) => problems.error(
            &[path, &[file_field.as_str()]].concat(),
            format!("set only one of `{env_field}` and `{file_field}`"),
        ),
        (Some(var), None) if !env.var_is_set(var) => problems.error(
            &[path, &[env_field.as_str()]].concat(),
            format!("environment variable {var} is not set"),
        ),
        (None, Some(file)) if !env.file_exists(file) => problems.error(
            &[path, &[file_field.as_str()]].concat(),
            format!("secret file {file} does not exist"),
        ),
        _ => {}
    }
}

fn check_pools(policy: &Policy, env: &dyn Environment, problems: &mut Problems) {
    for (name, pool) in &policy.pools {
        let at = |field: &'static str| ["pools", name.as_str(), field];
        check_driver(name, &pool.driver, env, problems);
        if pool.observe_only() && !pool.allow_agents.is_empty() {
            problems.warning(
                &["pools", name, "allow_agents"],
                "the pool has no driver: every agent may join it, so the list has no effect"
                    .to_string(),
            );
        }
        if pool.min_agents > pool.max_agents {
            problems.error(
                &at("min_agents"),
                format!(
                    "{} is above max_agents {}",
                    pool.min_agents, pool.max_agents
                ),
            );
        }
        if let Some(profile) = &pool.profile {
            match policy.profiles.get(profile) {
                None => problems.error(
                    &at("profile"),
                    not_found("profile", profile, policy.profiles.keys()),
                ),
                Some(p) if p.max_agents.is_some_and(|max| max < pool.min_agents) => problems.error(
                    &at("min_agents"),
                    format!(
                        "{} is above the profile {profile:?} max_agents {}",
                        pool.min_agents,
                        p.max_agents.unwrap_or_default()
                    ),
                ),
                Some(_) => {}
            }
        }
        if pool.target_cpu_percent > 90.0 {
            problems.warning(
                &at("target_cpu_percent"),
                format!(
                    "{}% leaves little headroom before agents saturate",
                    pool.target_cpu_percent
                ),
            );
        }
        let interval = policy.global.sampling_interval_secs;
        if pool.scale_down_stabilization_secs < 2 * interval {
            problems.warning(
                &at("scale_down_stabilization_secs"),
                format!(
                    "{} s is less than two sampling intervals: the pool may flap",
                    pool.scale_down_stabilization_secs
                ),
            );
        }
    }
}

fn check_ingest(policy: &Policy, problems: &mut Problems) {
    scrape::check_scrape(policy, problems);
    // The built-in `external` may be missing (pushed samples without a pool label are then
    // refused, and say why); a pool the operator named must exist.
    let ingest = &policy.ingest;
    if ingest.unknown_agents == super::UnknownAgents::Join
        && ingest.default_pool != super::IngestPolicy::default().default_pool
        && !policy.pools.contains_key(&ingest.default_pool)
    {
        problems.warning(
            &["ingest", "default_pool"],
            format!(
                "no pool {:?}: samples of unknown agents without a pool label will be refused",
                ingest.default_pool
            ),
        );
    }
}

fn check_driver(pool: &str, driver: &DriverConfig, env: &dyn Environment, problems: &mut Problems) {
    let at = |field: &'static str| ["pools", pool, "driver", field];
    let url = |problems: &mut Problems, field: &'static str, url: &str| {
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            problems.error(
                &at(field),
                format!("{url:?} is not an http:// or https:// URL"),
            );
        }
    };
    match driver {
        DriverConfig::None | DriverConfig::Process { .. } => {}
        DriverConfig::Http {
            url: target,
            token_env,
            ..
        } => {
            url(problems, "url", target);
            if let Some(var) = token_env
                && !env.var_is_set(var)
            {
                problems.error(
                    &at("token_env"),
                    format!("environment variable {var} is not set"),
                );
            }
        }
        DriverConfig::Kubernetes {
            namespace,
            name,
            api_server,
            kubeconfig,
            ..
        } => {
            if !is_kubernetes_name(name, 253) {
                problems.error(
                    &at("name"),
                    format!("{name:?} is not a Kubernetes object name (lowercase letters, digits, `-` and `.`)"),
                );
            }
            if let Some(namespace) = namespace
                && (!is_kubernetes_name(namespace, 63) || namespace.contains('.'))
            {
                problems.error(
                    &at("namespace"),
                    format!("{namespace:?} is not a namespace name (lowercase letters, digits and `-`, at most 63)"),
                );
            }
            if let Some(server) = api_server {
                url(problems, "api_server", server);
            }
            if let Some(file) = kubeconfig
                && !env.file_exists(file)
            {
                // A warning: the policy may be checked on a machine other than the controller's.
                problems.warning(
                    &at("kubeconfig"),
                    format!("kubeconfig {file} does not exist here"),
                );
            }
        }
    }
}

/// A DNS-1123 name: lowercase alphanumerics, `-` and `.`, starting and ending alphanumeric.
fn is_kubernetes_name(name: &str, max_len: usize) -> bool {
    let alphanumeric = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    !name.is_empty()
        && name.len() <= max_len
        && name
            .chars()
            .all(|c| alphanumeric(c) || c == '-' || c == '.')
        && name.starts_with(alphanumeric)
        && name.ends_with(alphanumeric)
}

fn check_profiles(policy: &Policy, problems: &mut Problems) {
    for (name, profile) in &policy.profiles {
        for (metric, levels) in &profile.thresholds {
            let set = levels.levels();
            for pair in set.windows(2) {
                let ((low_level, low), (high_level, high)) = (pair[0], pair[1]);
                if low >= high {
                    problems.error(
                        &["profiles", name, "thresholds", metric, low_level.as_str()],
                        format!(
                            "{} threshold {low} is not below the {} threshold {high}",
                            low_level.as_str(),
                            high_level.as_str()
                        ),
                    );
                }
            }
        }
    }
}

fn check_alerts(policy: &Policy, problems: &mut Problems) {
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    let mut scopes: BTreeMap<(&str, Option<&str>, &str), (usize, f64)> = BTreeMap::new();
    for (index, rule) in policy.alerts.iter().enumerate() {
        let item = format!("[{index}]");
        let at = |field: &'static str| ["alerts", item.as_str(), field];
        if let Some(first) = seen.insert(&rule.name, index) {
            problems.error(
                &at("name"),
                format!("{:?} is already the name of alerts[{first}]", rule.name),
            );
        }
        if let Some(pool) = &rule.pool
            && !policy.pools.contains_key(pool)
        {
            problems.error(&at("pool"), not_found("pool", pool, policy.pools.keys()));
        }
        if !rule.above.is_finite() {
            problems.error(&at("above"), "must be a finite number".into());
        }
        let scope = (
            rule.metric.as_str(),
            rule.pool.as_deref(),
            rule.level.as_str(),
        );
        if let Some((other, threshold)) = scopes.insert(scope, (index, rule.above))
            && threshold != rule.above
        {
            problems.error(
                &at("above"),
                format!(
                    "conflicts with alerts[{other}]: both are {} rules on {} for {}, at {threshold} and {}",
                    rule.level.as_str(),
                    rule.metric,
                    rule.pool.as_deref().map_or("every pool".to_string(), |p| format!("pool {p}")),
                    rule.above
                ),
            );
        }
    }
}

fn check_automation(policy: &Policy, problems: &mut Problems) {
    let automation = &policy.automation;
    let kinds = ActionKind::ALL.map(ActionKind::as_str);
    for (index, kind) in automation.auto_apply.iter().enumerate() {
        if !kinds.contains(&kind.as_str()) {
            let item = format!("[{index}]");
            let hint = super::schema::suggest(kind, kinds.iter().copied())
                .map(|s| format!("; did you mean `{s}`?"))
                .unwrap_or_default();
            problems.error(
                &["automation", "auto_apply", item.as_str()],
                format!("unknown action kind `{kind}`{hint}"),
            );
        }
    }
    for class in automation.risk_classes.keys() {
        if !["low", "medium", "high", "critical"].contains(&class.as_str()) {
            problems.error(
                &["automation", "risk_classes", class.as_str()],
                format!("unknown risk class `{class}`, expected low, medium, high or critical"),
            );
        }
    }
    if automation.verification.window_secs < policy.global.sampling_interval_secs {
        problems.warning(
            &["automation", "verification", "window_secs"],
            "shorter than one sampling interval: verification sees no sample".into(),
        );
    }
}

fn not_found<'a>(
    what: &str,
    name: &str,
    known: impl Iterator<Item = &'a String> + Clone,
) -> String {
    let hint = super::schema::suggest(name, known.clone().map(String::as_str))
        .map(|s| format!("; did you mean `{s}`?"))
        .unwrap_or_default();
    let list: Vec<&str> = known.map(String::as_str).collect();
    if list.is_empty() {
        format!("no {what} named {name:?} is defined{hint}")
    } else {
        format!(
            "no {what} named {name:?} (defined: {}){hint}",
            list.join(", ")
        )
    }
}
