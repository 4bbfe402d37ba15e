//! Checks of notification channels and the routes that name them: secrets that exist,
//! addresses that parse, URLs that are http(s), channels that are defined.

use super::{Problems, not_found, secret};
use crate::policy::environment::Environment;
use crate::policy::model::Policy;
use crate::policy::rules::Channel;

/// The path the alertmanager channel adds to its base URL.
const ALERTMANAGER_ALERTS_PATH: &str = "/api/v2/alerts";

pub(super) fn check_routes_and_channels(
    policy: &Policy,
    env: &dyn Environment,
    problems: &mut Problems,
) {
    for (name, channel) in &policy.channels {
        let path = ["channels", name.as_str()];
        match channel {
            Channel::Webhook { url_env, url_file } | Channel::Slack { url_env, url_file } => {
                secret(
                    problems,
                    &path,
                    "url",
                    url_env.as_deref(),
                    url_file.as_deref(),
                    env,
                );
            }
            Channel::Email { .. } => check_email(&path, channel, env, problems),
            Channel::Alertmanager { url } => {
                let at = [&path[..], &["url"]].concat();
                if !(url.starts_with("http://") || url.starts_with("https://")) {
                    problems.error(&at, format!("{url:?} is not an http:// or https:// URL"));
                } else if url
                    .trim_end_matches('/')
                    .ends_with(ALERTMANAGER_ALERTS_PATH)
                {
                    problems.error(
                        &at,
                        format!(
                            "give Alertmanager's base URL: {ALERTMANAGER_ALERTS_PATH} is added to it"
                        ),
                    );
                }
            }
            Channel::Console => {}
        }
    }
    for (position, channel) in policy.reports.channels.iter().enumerate() {
        if !policy.channels.contains_key(channel) {
            let entry = format!("[{position}]");
            problems.error(
                &["reports", "channels", entry.as_str()],
                not_found("channel", channel, policy.channels.keys()),
            );
        }
    }
    for (position, format) in policy.reports.formats.iter().enumerate() {
        if !crate::policy::reports::REPORT_FORMATS.contains(&format.as_str()) {
            let entry = format!("[{position}]");
            problems.error(
                &["reports", "formats", entry.as_str()],
                format!("unknown format {format:?}: expected text, json, csv or html"),
            );
        }
    }
    for (position, period) in policy.reports.periods.iter().enumerate() {
        if *period == crate::report::Period::Final {
            let entry = format!("[{position}]");
            problems.error(
                &["reports", "periods", entry.as_str()],
                "the final report is written when the controller stops: set `final = true`"
                    .to_string(),
            );
        }
    }
    for (index, route) in policy.routes.iter().enumerate() {
        let item = format!("[{index}]");
        for (position, channel) in route.channels.iter().enumerate() {
            if !policy.channels.contains_key(channel) {
                let entry = format!("[{position}]");
                problems.error(
                    &["routes", item.as_str(), "channels", entry.as_str()],
                    not_found("channel", channel, policy.channels.keys()),
                );
            }
        }
        for label in route.matchers.keys() {
            if !["level", "pool", "rule", "agent", "metric"].contains(&label.as_str()) {
                problems.warning(
                    &["routes", item.as_str(), "matchers", label.as_str()],
                    format!("alerts carry no label {label:?}: this route never matches"),
                );
            }
        }
    }
}

/// An email channel: a host, addresses that parse, and a password wherever a user is named.
fn check_email(path: &[&str], channel: &Channel, env: &dyn Environment, problems: &mut Problems) {
    let Channel::Email {
        smtp_host,
        smtp_port,
        from,
        to,
        username,
        password_env,
        password_file,
    } = channel
    else {
        return;
    };
    let at = |field: &'static str| [path, &[field]].concat();
    if smtp_host.trim().is_empty() {
        problems.error(&at("smtp_host"), "is empty".into());
    }
    if *smtp_port == 0 {
        problems.error(&at("smtp_port"), "0 is not a port".into());
    }
    if from.parse::<lettre::message::Mailbox>().is_err() {
        problems.error(&at("from"), format!("{from:?} is not an email address"));
    }
    for (index, address) in to.iter().enumerate() {
        if address.parse::<lettre::message::Mailbox>().is_err() {
            let item = format!("[{index}]");
            problems.error(
                &[path, &["to", item.as_str()]].concat(),
                format!("{address:?} is not an email address"),
            );
        }
    }
    if to.is_empty() {
        problems.error(&at("to"), "needs at least one recipient".into());
    }
    match username {
        Some(_) => secret(
            problems,
            path,
            "password",
            password_env.as_deref(),
            password_file.as_deref(),
            env,
        ),
        None if password_env.is_some() || password_file.is_some() => problems.warning(
            &at(if password_env.is_some() {
                "password_env"
            } else {
                "password_file"
            }),
            "no `username` is set, so the password is never used".into(),
        ),
        None => {}
    }
}
