//! The metric sources the controller reads itself: the host and its worker processes
//! (`collector`), Prometheus endpoints (`scrape`) and WebSocket agents (`ws_pull`). Each is
//! an actor that only reports samples (to the fleet) and reachability (to the health actor);
//! whether an agent is healthy is the health actor's verdict alone.

pub mod collector;
pub mod scrape;
pub mod ws_pull;
