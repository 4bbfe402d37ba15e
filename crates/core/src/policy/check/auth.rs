//! Checks of how scrapes and PromQL queries authenticate: one source per secret (a variable
//! that is set or a file that exists), bearer or basic but not both, header names and values
//! that HTTP can carry, and a CA file that exists.

use super::{Problems, secret};
use crate::policy::environment::Environment;
use crate::policy::model::Policy;
use crate::policy::scrape::HttpAuth;

pub(super) fn check_all(policy: &Policy, env: &dyn Environment, problems: &mut Problems) {
    let ingest = &policy.ingest;
    for (index, target) in ingest.scrape.iter().enumerate() {
        let item = format!("[{index}]");
        check_auth(
            &["ingest", "scrape", &item, "auth"],
            &target.auth,
            env,
            problems,
        );
    }
    for (name, pool) in &ingest.scrape_pools {
        check_auth(
            &["ingest", "scrape_pools", name, "auth"],
            &pool.auth,
            env,
            problems,
        );
    }
    for (index, query) in ingest.promql.iter().enumerate() {
        let item = format!("[{index}]");
        check_auth(
            &["ingest", "promql", &item, "auth"],
            &query.auth,
            env,
            problems,
        );
    }
}

fn check_auth(path: &[&str], auth: &HttpAuth, env: &dyn Environment, problems: &mut Problems) {
    let bearer = auth.bearer_token_env.is_some() || auth.bearer_token_file.is_some();
    if bearer {
        secret(
            problems,
            path,
            "bearer_token",
            auth.bearer_token_env.as_deref(),
            auth.bearer_token_file.as_deref(),
            env,
        );
    }
    if let Some(basic) = &auth.basic_auth {
        let at = [path, &["basic_auth"]].concat();
        if bearer {
            problems.error(&at, "set a bearer token or basic_auth, not both".into());
        }
        if basic.username.is_empty() || basic.username.contains(':') {
            problems.error(
                &[&at[..], &["username"]].concat(),
                "the user name is empty or holds a `:`".into(),
            );
        }
        secret(
            problems,
            &at,
            "password",
            basic.password_env.as_deref(),
            basic.password_file.as_deref(),
            env,
        );
    }
    for (name, value) in &auth.headers {
        let at = [path, &["headers", name.as_str()]].concat();
        let token = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
        if !token {
            problems.error(&at, format!("{name:?} is not an HTTP header name"));
        } else if name.eq_ignore_ascii_case("authorization") {
            problems.error(
                &at,
                "put credentials in bearer_token_* or basic_auth, where they stay out of the \
                 policy text"
                    .into(),
            );
        }
        if value.chars().any(|c| c.is_control()) {
            problems.error(&at, "the value holds control characters".into());
        }
    }
    if let Some(file) = &auth.ca_file
        && !env.file_exists(file)
    {
        problems.error(
            &[path, &["ca_file"]].concat(),
            format!("CA file {file} does not exist"),
        );
    }
}
