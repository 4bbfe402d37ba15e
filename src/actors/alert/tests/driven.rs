//! The alert actor on a clock the test drives, notifying a real webhook receiver: exact
//! counts of messages, because no timer of the controller can move while the test looks.

use std::sync::{Arc, Mutex};

use actix_web::{App, HttpServer, web};
use serde_json::Value;

use super::*;
use crate::clock::Clock;
use crate::notify::Notifier;

/// A webhook receiver on a free loopback port that keeps every JSON body it is sent.
struct Hook {
    url: String,
    bodies: Arc<Mutex<Vec<Value>>>,
}

impl Hook {
    fn start() -> Hook {
        let bodies: Arc<Mutex<Vec<Value>>> = Arc::default();
        let kept = web::Data::new(bodies.clone());
        let server = HttpServer::new(move || {
            App::new().app_data(kept.clone()).route(
                "/hook",
                web::post().to(
                    |kept: web::Data<Arc<Mutex<Vec<Value>>>>, body: web::Json<Value>| async move {
                        kept.lock().unwrap().push(body.into_inner());
                        "ok"
                    },
                ),
            )
        })
        .workers(1)
        .bind("127.0.0.1:0")
        .unwrap();
        let url = format!("http://{}/hook", server.addrs()[0]);
        actix::spawn(server.run());
        Hook { url, bodies }
    }

    fn titles(&self) -> Vec<String> {
        let bodies = self.bodies.lock().unwrap();
        bodies.iter().map(|b| b["title"].to_string()).collect()
    }
}

/// The alert actor, its clock and notifier, routing `rule` to `hook` with these timings.
struct Driven {
    alert: actix::Addr<Alert>,
    clock: Clock,
    notifier: Notifier,
    _dir: tempfile::TempDir,
}

impl Driven {
    fn start(hook: &Hook, group_wait: u64, group_interval: u64, repeat: u64) -> Driven {
        let dir = tempfile::tempdir().unwrap();
        let url_file = dir.path().join("hook.url");
        std::fs::write(&url_file, &hook.url).unwrap();
        let text = format!(
            "[channels.ops]\ntype = \"webhook\"\nurl_file = \"{}\"\n\
             [[routes]]\nchannels = [\"ops\"]\ngroup_wait_secs = {group_wait}\n\
             group_interval_secs = {group_interval}\nrepeat_interval_secs = {repeat}\n",
            url_file.display()
        );
        let policy = PolicyHandle::new(crate::policy::load_str("t.toml", &text).unwrap());
        let clock = Clock::manual(1_800_000_000_000);
        let notifier = Notifier::new(policy.clone(), "http://127.0.0.1:9".into());
        let alert = Alert::new(Store::open(dir.path()).unwrap().with_clock(clock.clone()))
            .with_clock(clock.clone())
            .with_routing(policy, notifier.clone())
            .start();
        Driven {
            alert,
            clock,
            notifier,
            _dir: dir,
        }
    }

    /// Moves the clock on by `secs` and waits until the alerts were evaluated at the new time
    /// and everything that evaluation sent has arrived.
    async fn advance(&self, secs: u64) {
        let to = self.clock.advance(Duration::from_secs(secs));
        self.settled(to).await;
    }

    async fn settled(&self, at_ms: i64) {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let stats = self.alert.send(GetAlertStats).await.unwrap();
            if stats.last_evaluation_ms >= at_ms && self.notifier.in_flight() == 0 {
                return;
            }
            assert!(std::time::Instant::now() < deadline, "never evaluated");
            actix::clock::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn cross(&self, agents: &[&str], breached: bool) {
        for agent in agents {
            let mut crossing = crossing(&rule(0, 0), breached);
            crossing.agent = agent.to_string();
            crossing.ts_ms = self.clock.now_ms();
            self.alert.send(crossing).await.unwrap();
        }
    }
}

#[actix::test]
async fn a_group_fires_once_repeats_once_at_its_interval_and_resolves_once() {
    let hook = Hook::start();
    let driven = Driven::start(&hook, 3, 2, 20);
    driven.cross(&["w-1", "w-2", "w-3"], true).await;
    driven.advance(2).await;
    assert!(hook.titles().is_empty(), "not before group_wait");
    driven.advance(1).await;
    assert_eq!(hook.titles(), ["\"[FIRING:3] w hot\""]);
    // Group ticks pass with nothing new: no message until repeat_interval.
    for _ in 0..9 {
        driven.advance(2).await;
    }
    assert_eq!(hook.titles().len(), 1, "{:?}", hook.titles());
    driven.advance(2).await;
    assert_eq!(
        hook.titles().len(),
        2,
        "one repeat at 20 s: {:?}",
        hook.titles()
    );
    assert_eq!(hook.titles()[1], "\"[FIRING:3] w hot\"");

    // Every agent falls back at the same instant: one [RESOLVED], no update before it.
    driven.cross(&["w-1", "w-2", "w-3"], false).await;
    driven.advance(2).await;
    for _ in 0..5 {
        driven.advance(2).await;
    }
    assert_eq!(
        hook.titles(),
        [
            "\"[FIRING:3] w hot\"",
            "\"[FIRING:3] w hot\"",
            "\"[RESOLVED] w hot\""
        ]
    );
}

#[actix::test]
async fn keep_firing_for_resolves_exactly_when_it_has_run_out() {
    let hook = Hook::start();
    let driven = Driven::start(&hook, 0, 1, 3600);
    let rule = rule(10, 0);
    let mut crossed = crossing(&rule, true);
    crossed.ts_ms = driven.clock.now_ms();
    driven.alert.send(crossed.clone()).await.unwrap();
    driven.advance(0).await;
    assert_eq!(
        state_of(&driven.alert, "hot").await,
        Some(AlertState::Firing)
    );
    crossed.breached = false;
    driven.alert.send(crossed).await.unwrap();
    driven.advance(9).await;
    assert_eq!(
        state_of(&driven.alert, "hot").await,
        Some(AlertState::Firing)
    );
    driven.advance(1).await;
    assert_eq!(
        state_of(&driven.alert, "hot").await,
        Some(AlertState::Resolved)
    );
}
