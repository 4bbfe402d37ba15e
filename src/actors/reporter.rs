//! `Reporter`: writes each scheduled report (`[reports] periods`) as its period ends, and
//! sends its summary to `[reports] channels`. Reports are built on a blocking thread from
//! the store, so a long one holds up no actor.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use actix::prelude::*;
use tracing::Instrument;

use crate::clock::Clock;
use crate::notify::Notifier;
use crate::policy::PolicyHandle;
use crate::report::Period;
use crate::reports::{self, schedule};
use crate::store::Store;

/// How often the reporter looks whether a period ended.
const CHECK_EVERY: Duration = Duration::from_secs(30);

/// Writes scheduled reports.
pub struct Reporter {
    store: Store,
    policy: PolicyHandle,
    notifier: Notifier,
    data_dir: PathBuf,
    clock: Clock,
    /// Per period, the end of the window last reported (or passed before the start).
    done: BTreeMap<Period, i64>,
    /// A report is being built.
    busy: bool,
    check_every: Duration,
}

impl Reporter {
    /// A reporter writing under `data_dir`.
    pub fn new(store: Store, policy: PolicyHandle, notifier: Notifier, data_dir: PathBuf) -> Self {
        Reporter {
            store,
            policy,
            notifier,
            data_dir,
            clock: Clock::system(),
            done: BTreeMap::new(),
            busy: false,
            check_every: CHECK_EVERY,
        }
        .with_clock(Clock::system())
    }

    /// Looks whether a period ended this often (tests look often).
    pub fn checking_every(mut self, every: Duration) -> Self {
        self.check_every = every;
        self
    }

    /// Reads time from `clock`. The last period that ended before now is still reported if
    /// the store holds data of it and its report was not written (the controller was down
    /// when it ended); older ones are not.
    pub fn with_clock(mut self, clock: Clock) -> Self {
        let now = clock.now_ms();
        let current = self.policy.current();
        let dir = schedule::report_dir(&current.policy, &self.data_dir);
        let first = schedule::formats(&current.policy).first().copied();
        self.done = Period::ALL
            .into_iter()
            .filter_map(|period| {
                let window = period.last_complete(now)?;
                let written = first.is_none_or(|format| {
                    let name = format!(
                        "{}.{}",
                        reports::stem(period, window.since_ms),
                        format.extension()
                    );
                    dir.join(name).exists()
                });
                let missed = !written && self.store.has_rollups(window).unwrap_or(false);
                let done = if missed {
                    window.since_ms
                } else {
                    window.until_ms
                };
                Some((period, done))
            })
            .collect();
        self.clock = clock;
        self
    }

    fn check(&mut self, ctx: &mut Context<Self>) {
        if self.busy {
            return;
        }
        let now = self.clock.now_ms();
        let periods = self.policy.current().policy.reports.periods.clone();
        let due = schedule::due(&periods, &self.done, now);
        if due.is_empty() {
            return;
        }
        self.busy = true;
        let (store, policy, dir) = (
            self.store.clone(),
            self.policy.clone(),
            self.data_dir.clone(),
        );
        let notifier = self.notifier.clone();
        let work = async move {
            let mut reported = Vec::new();
            for (period, window) in due {
                let (store, handle, dir) = (store.clone(), policy.clone(), dir.clone());
                let written = tokio::task::spawn_blocking(move || {
                    schedule::write_report(&store, &handle, &dir, period, window, now)
                })
                .await;
                match written {
                    Ok(Ok((report, files))) => {
                        reported.push((period, window.until_ms));
                        tracing::info!(message = "Report written.", period = %period,
                            files = ?files);
                        let channels = policy.current().policy.reports.channels.clone();
                        if !channels.is_empty() {
                            notifier.send_via(&channels, schedule::notification(&report, &files));
                        }
                    }
                    Ok(Err(error)) => {
                        tracing::warn!(message = "Report not written.", period = %period, %error)
                    }
                    Err(error) => {
                        tracing::warn!(message = "Report builder failed.", period = %period, %error)
                    }
                }
            }
            reported
        };
        let span = tracing::info_span!("actor", actor = "reporter");
        ctx.spawn(
            work.instrument(span)
                .into_actor(self)
                // Only what was written is done: a failure is tried again at the next look.
                .map(|written, act, _| {
                    act.busy = false;
                    act.done.extend(written);
                }),
        );
    }
}

impl Actor for Reporter {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.run_interval(self.check_every, |act, ctx| act.check(ctx));
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use actix_web::{App, HttpResponse, HttpServer, web};
    use serde_json::Value;

    use super::*;
    use crate::notify::receivers::wait_until;

    /// 2026-12-01T00:00:00Z.
    const T0: i64 = 1_796_083_200_000;

    /// A webhook receiver keeping what it is sent; answers its URL.
    fn receiver(seen: Arc<Mutex<Vec<Value>>>) -> String {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let server = HttpServer::new(move || {
            let seen = seen.clone();
            App::new().route(
                "/hook",
                web::post().to(move |body: web::Json<Value>| {
                    seen.lock().unwrap().push(body.into_inner());
                    async { HttpResponse::Ok().finish() }
                }),
            )
        })
        .workers(1)
        .listen(listener)
        .unwrap()
        .run();
        actix_web::rt::spawn(server);
        url
    }

    #[actix_web::test]
    async fn an_hourly_report_is_written_and_announced_when_the_hour_ends() {
        let dir = tempfile::tempdir().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let url_file = dir.path().join("hook-url");
        std::fs::write(&url_file, receiver(seen.clone())).unwrap();
        let text = format!(
            "[reports]\nperiods = [\"hourly\"]\nformats = [\"json\", \"text\"]\n\
             channels = [\"ops\"]\n[channels.ops]\ntype = \"webhook\"\nurl_file = {:?}\n",
            url_file.display().to_string()
        );
        let policy = PolicyHandle::new(crate::policy::load_str("t.toml", &text).unwrap());
        let clock = Clock::manual(T0 + 59 * 60_000);
        let store = Store::open(dir.path()).unwrap().with_clock(clock.clone());
        let notifier = Notifier::new(policy.clone(), "http://127.0.0.1:1".into());
        let _reporter = Reporter::new(store, policy, notifier, dir.path().to_path_buf())
            .with_clock(clock.clone())
            .checking_every(Duration::from_millis(20))
            .start();
        let written = dir.path().join("reports/hourly-20261201T0000Z.json");
        clock.advance(Duration::from_secs(61));
        let message = wait_until("the summary at the webhook", async || {
            seen.lock().unwrap().first().cloned()
        })
        .await;
        assert_eq!(
            message["title"],
            "swarmpilot hourly report from 2026-12-01T00:00:00.000Z"
        );
        assert!(
            message["text"]
                .as_str()
                .unwrap()
                .contains("no agent reported"),
            "{message}"
        );
        let report: Value = serde_json::from_slice(&std::fs::read(&written).unwrap()).unwrap();
        assert_eq!(report["window"]["since_ms"], T0);
        assert!(
            dir.path()
                .join("reports/hourly-20261201T0000Z.txt")
                .exists()
        );
        // Once, and only the hour that ended (the report of 23:00 to 00:00 ended before the
        // start): two files, one message.
        assert_eq!(
            std::fs::read_dir(dir.path().join("reports"))
                .unwrap()
                .count(),
            2
        );
        assert_eq!(seen.lock().unwrap().len(), 1);
    }

    #[actix_web::test]
    async fn a_report_missed_while_down_is_written_at_the_start() {
        let dir = tempfile::tempdir().unwrap();
        let policy = PolicyHandle::new(
            crate::policy::load_str("t.toml", "[reports]\nperiods = [\"hourly\"]\n").unwrap(),
        );
        // The controller was down when 00:00 to 01:00 ended; it holds minutes of it.
        let clock = Clock::manual(T0 + 60 * 60_000 + 10 * 60_000);
        let store = Store::open(dir.path()).unwrap().with_clock(clock.clone());
        let minute = crate::analytics::rollup::MinuteSummary {
            minute_ms: T0 + 30 * 60_000,
            min: 1.0,
            max: 1.0,
            mean: 1.0,
            count: 1,
            p95: None,
        };
        store
            .write_rollups(&[crate::store::RollupRow {
                agent: "w-1".into(),
                pool: "web".into(),
                metric: "cpu_percent".into(),
                summary: minute,
            }])
            .unwrap();
        let notifier = Notifier::new(policy.clone(), "http://127.0.0.1:1".into());
        let _reporter = Reporter::new(store, policy, notifier, dir.path().to_path_buf())
            .with_clock(clock)
            .checking_every(Duration::from_millis(20))
            .start();
        let written = dir.path().join("reports/hourly-20261201T0000Z.json");
        wait_until("the missed report", async || written.exists().then_some(())).await;
        let report: Value = serde_json::from_slice(&std::fs::read(&written).unwrap()).unwrap();
        assert_eq!(report["kpis"][0]["agents"], 1);
    }
}
