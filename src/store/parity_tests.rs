//! Both engines answer alike: the same writes on SQLite and on PostgreSQL, then every read
//! the store offers, compared.

use super::tests::places;
use super::*;
use crate::analytics::rollup::{MINUTE_MS, MinuteSummary};
use crate::domain::Change;
use crate::notify::{Matcher, Silence};
use crate::report::{Period, ReportBuilder, ReportSpec, Window};

const T0: i64 = 1_700_000_000_000 - 1_700_000_000_000 % rollups::HOUR_MS;

/// Writes the same history into `store` whatever its engine.
fn write_history(store: &Store) {
    let proposal = |change: Change| Proposal {
        pool: "worker".into(),
        change,
        reason: "load".into(),
        evidence: Evidence::empty(),
        confidence: 1.0,
        expected_effect: "more room".into(),
    };
    let scale = store
        .insert_action(&proposal(Change::Scale { from: 2, to: 3 }), "auto")
        .unwrap();
    for to in [
        ActionState::Applying,
        ActionState::Verifying,
        ActionState::Applied,
    ] {
        store.transition(scale.id, to, "step", "auto").unwrap();
    }
    let restart = store
        .insert_action(
            &proposal(Change::Restart {
                agent: "worker-1".into(),
            }),
            "ann",
        )
        .unwrap();
    store
        .transition(restart.id, ActionState::Applying, "go", "ann")
        .unwrap();
    store
        .transition(restart.id, ActionState::Failed, "no", "auto")
        .unwrap();
    store
        .set_verification(scale.id, &serde_json::json!({"cpu": 41.5}))
        .unwrap();
    let alert = |ts_ms, to_state, value| AlertTransition {
        ts_ms,
        rule: "cpu_high",
        agent: "worker-1",
        pool: "worker",
        level: "warning",
        from_state: "pending",
        to_state,
        value,
        metric: "cpu_percent",
        threshold: Some(80.0),
        message: "hot",
    };
    store
        .record_alerts(&[
            alert(T0 + 1_000, "firing", 91.25),
            alert(T0 + 90_000, "resolved", 12.0),
        ])
        .unwrap();
    store
        .record_policy_version("v1", &["a.toml".into()], "+x", "startup")
        .unwrap();
    let silence = store
        .insert_silence(Silence {
            id: 0,
            matchers: vec![Matcher::new("pool", "work.*", true)],
            starts_ms: T0,
            ends_ms: T0 + 10 * MINUTE_MS,
            comment: "deploy".into(),
            created_by: "ann".into(),
            created_ms: T0,
        })
        .unwrap();
    assert!(
        store
            .expire_silence(silence.id, T0 + 5 * MINUTE_MS)
            .unwrap()
    );
    let rows: Vec<RollupRow> = (0..90)
        .map(|m| RollupRow {
            agent: "worker-1".into(),
            pool: "worker".into(),
            metric: if m % 2 == 0 {
                "cpu_percent"
            } else {
                "response_time_ms"
            }
            .into(),
            summary: MinuteSummary {
                minute_ms: T0 + m * MINUTE_MS,
                min: 1.0,
                max: 10.0 + m as f64,
                mean: 5.5,
                count: 30,
                p95: (m % 3 != 0).then_some(9.5),
            },
        })
        .collect();
    store.write_rollups(&rows).unwrap();
    // A minute again: merged into the first.
    store.write_rollups(&rows[..1]).unwrap();
    store.check_writable().unwrap();
}

/// Everything the store answers about that history, as one JSON value.
fn read_everything(store: &Store) -> serde_json::Value {
    let log = store
        .log(&LogFilter {
            limit: 100,
            ..Default::default()
        })
        .unwrap();
    let log: Vec<String> = log.iter().map(|e| format!("{e:?}")).collect();
    let actions: Vec<String> = store
        .actions(None, 10)
        .unwrap()
        .iter()
        .map(|a| format!("{a:?}"))
        .collect();
    let series = store
        .read_series(&SeriesQuery {
            agent: "worker-1".into(),
            metric: "cpu_percent".into(),
            since_ms: T0,
            until_ms: T0 + 2 * rollups::HOUR_MS,
            step_ms: 10 * MINUTE_MS,
            limit: 100,
        })
        .unwrap();
    let silences: Vec<String> = store
        .silences()
        .unwrap()
        .iter()
        .map(|s| {
            format!(
                "{} {} {} {}",
                s.id, s.starts_ms, s.ends_ms, s.matchers[0].value
            )
        })
        .collect();
    let mut builder = ReportBuilder::new(ReportSpec {
        period: Period::Hourly,
        window: Window {
            since_ms: T0 + rollups::HOUR_MS,
            until_ms: T0 + 2 * rollups::HOUR_MS,
        },
        generated_ms: T0 + 2 * rollups::HOUR_MS,
        pool: None,
        pools: Vec::new(),
        rules: Vec::new(),
        currency: "USD".into(),
    });
    store.feed_report(&mut builder).unwrap();
    serde_json::json!({
        "log": log,
        "actions": actions,
        "by_state": format!("{:?}", store.count_by_state().unwrap()),
        "entered": store.count_entered("worker", None, ActionState::Applying, 0).unwrap(),
        "changes": store.count_changes("worker", 0).unwrap(),
        "verification": store.verification(1).unwrap(),
        "alerts": store.alert_history(&AlertHistoryFilter { limit: 10, ..Default::default() })
            .unwrap(),
        "policies": store.policy_versions(10).unwrap(),
        "series": series,
        "silences": silences,
        "has_rollups": store.has_rollups(Window { since_ms: T0, until_ms: T0 + 1 }).unwrap(),
        "report": builder.finish(),
        "deleted": store.delete_rollups_before(T0 + 30 * MINUTE_MS).unwrap(),
    })
}

#[test]
fn sqlite_and_postgres_answer_the_same_history_alike() {
    let [lite, pg] = places();
    let clock = || Clock::manual(T0 + 3 * rollups::HOUR_MS);
    let (lite, pg) = (
        lite.open().with_clock(clock()),
        pg.open().with_clock(clock()),
    );
    assert_eq!(
        (lite.engine(), pg.engine()),
        (Engine::Sqlite, Engine::Postgres)
    );
    write_history(&lite);
    write_history(&pg);
    let (a, b) = (read_everything(&lite), read_everything(&pg));
    // Spot checks that the history is really there, then the whole of it.
    assert_eq!(a["changes"], 1, "the failed restart is not a change");
    assert_eq!(a["deleted"], 30);
    assert!(a["report"].to_string().contains("cpu_percent"));
    for key in a.as_object().unwrap().keys() {
        assert_eq!(
            a[key], b[key],
            "{key} differs between SQLite and PostgreSQL"
        );
    }
}

#[test]
fn postgres_migrations_run_once_and_a_second_controller_finds_them_done() {
    let url = testing::TestServer::shared().fresh_database();
    let first = Store::connect(&url, None).unwrap();
    first.check_writable().unwrap();
    // Opened again (a standby, a restart): nothing to apply, the data is kept.
    let second = Store::connect(&url, None).unwrap();
    let versions: Vec<i64> = second
        .with_db(|db| {
            db.query(
                "SELECT version FROM schema_migrations ORDER BY version",
                &[],
            )
        })
        .unwrap()
        .iter()
        .map(|row| row.get(0).unwrap())
        .collect();
    assert_eq!(versions, [1, 2, 3]);
    assert!(matches!(
        Store::connect("postgres://swarmpilot@127.0.0.1:1/none", None),
        Err(StoreError::Postgres(_))
    ));
}
