//! The Prometheus text format read from scrape targets (`text`), the mappings that turn its
//! series into samples (`map`), and PromQL pool inputs (`promql`). The scraper that fetches
//! the pages is an actor under `actors::sources::scrape`.

pub mod auth;
pub mod map;
pub mod promql;
pub mod text;
