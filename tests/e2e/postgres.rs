//! The controller on PostgreSQL (`[store] url`), against a real server the tests initialise:
//! the same crash recovery and store-failure paths as on SQLite, and nothing written to an
//! SQLite file beside it.

use swarmpilot::store::testing::TestServer;

use crate::gate::wait_state;
use crate::shutdown::{killed_on, policy_with};
use crate::store_faults::{halted, recovers, scaling_server_with};

/// `[store]` naming a new database on the test server.
fn store_on_postgres() -> String {
    let url = TestServer::shared().fresh_database();
    format!("[store]\nurl = \"{url}\"\n")
}

#[tokio::test]
async fn on_postgres_a_controller_killed_while_applying_reconciles_its_action_once() {
    let server = killed_on(&policy_with(&store_on_postgres()), "applying", |server| {
        assert!(
            !server.data_dir.join("swarmpilot.db").exists(),
            "no SQLite file beside PostgreSQL"
        );
    })
    .await;
    let (_, system) = server.get("/api/v1/system").await;
    assert_eq!(system["store"], "postgres", "{system}");
}

#[tokio::test]
async fn on_postgres_a_store_failing_while_applying_stops_actuation_until_it_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let (server, fault, id) = scaling_server_with(dir.path(), 4, &store_on_postgres()).await;
    wait_state(&server, id, "applying", 10).await;
    std::fs::write(&fault, "").unwrap();
    halted(&server, "applying", id).await;
    recovers(&server, &fault, id).await;
}
