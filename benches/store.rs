//! The store's write latency on each engine (issue 24): an action's life as the actuator
//! writes it (proposed, then four transitions, each its own transaction with its log row),
//! and one minute's rollups of 100 series (one transaction). SQLite is the embedded file
//! (WAL, synchronous=NORMAL); PostgreSQL a local server on loopback with its durable defaults
//! (fsync and synchronous_commit on), initialised by `swarmpilot::store::testing`.
//! Run: `cargo bench --bench store` (needs Debian's postgresql, which scripts/test installs).

use criterion::{Criterion, criterion_group, criterion_main};
use swarmpilot::analytics::rollup::MinuteSummary;
use swarmpilot::domain::{ActionState, Change, Proposal, evidence::Evidence};
use swarmpilot::store::testing::TestServer;
use swarmpilot::store::{RollupRow, Store};

fn proposal() -> Proposal {
    Proposal {
        pool: "web".into(),
        change: Change::Scale { from: 2, to: 3 },
        reason: "cpu 60% above target 30%".into(),
        evidence: Evidence::empty(),
        confidence: 1.0,
        expected_effect: "a third more capacity".into(),
    }
}

/// One action through proposed, applying, verifying, applied.
fn action_life(store: &Store) {
    let action = store.insert_action(&proposal(), "auto").unwrap();
    for to in [
        ActionState::Applying,
        ActionState::Verifying,
        ActionState::Applied,
    ] {
        store.transition(action.id, to, "step", "auto").unwrap();
    }
}

/// One minute of 100 series, each a new minute.
fn rollups(minute: i64) -> Vec<RollupRow> {
    (0..100)
        .map(|n| RollupRow {
            agent: format!("web-{}", n / 10),
            pool: "web".into(),
            metric: format!("metric_{}", n % 10),
            summary: MinuteSummary {
                minute_ms: minute * 60_000,
                min: 1.0,
                max: 9.0,
                mean: 4.5,
                count: 30,
                p95: Some(8.5),
            },
        })
        .collect()
}

fn engines() -> Vec<(&'static str, Store, tempfile::TempDir)> {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = Store::open(dir.path()).unwrap();
    let url = TestServer::durable().fresh_database();
    let postgres = Store::connect(&url, None).unwrap();
    let other = tempfile::tempdir().unwrap();
    vec![("sqlite", sqlite, dir), ("postgres", postgres, other)]
}

fn writes(c: &mut Criterion) {
    let mut group = c.benchmark_group("store_write");
    for (engine, store, _dir) in engines() {
        group.bench_function(format!("{engine}/action_life"), |b| {
            b.iter(|| action_life(&store))
        });
        let mut minute = 29_000_000;
        group.bench_function(format!("{engine}/rollups_100"), |b| {
            b.iter(|| {
                minute += 1;
                store.write_rollups(&rollups(minute)).unwrap()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, writes);
criterion_main!(benches);
