use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::util::{EXE, Server, wait_for};

fn run(args: &[&str]) -> (i32, String) {
    let output = Command::new(EXE)
        .args(args)
        .output()
        .expect("run swarmpilot");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.code().unwrap_or(-1), text)
}

#[test]
fn policy_check_passes_on_everything_shipped() {
    let policies = concat!(env!("CARGO_MANIFEST_DIR"), "/policies");
    let (code, output) = run(&["policy", "check", policies]);
    assert_eq!(code, 0, "{output}");
    assert!(
        output.contains("9 policies checked: 0 error(s), 0 warning(s)"),
        "{output}"
    );
}

#[test]
fn policy_check_reports_every_error_with_its_location_and_fails() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.toml");
    std::fs::write(&file, "[pools.w]\nmin_agentz = 1\nmax_agents = \"many\"\n").unwrap();
    let (code, output) = run(&["policy", "check", file.to_str().unwrap()]);
    assert_eq!(code, 1, "{output}");
    let path = file.display();
    assert!(output.contains(&format!("{path}:2:1: error: pools.w.min_agentz: unknown field `min_agentz`; did you mean `min_agents`?")), "{output}");
    assert!(
        output.contains(&format!(
            "{path}:3:14: error: pools.w.max_agents: expected an integer"
        )),
        "{output}"
    );
    assert!(output.contains("1 policy checked: 2 error(s)"), "{output}");
}

#[test]
fn policy_schema_is_json_schema() {
    let (code, output) = run(&["policy", "schema"]);
    assert_eq!(code, 0);
    let schema: Value = serde_json::from_str(&output).expect("JSON");
    assert!(
        schema["$schema"]
            .as_str()
            .unwrap()
            .contains("json-schema.org")
    );
    assert!(schema["$defs"]["PoolPolicy"]["properties"]["min_agents"]["description"].is_string());
}

fn rule_file(above: &str) -> String {
    format!(
        "[[alerts]]\nname = \"cpu_probe\"\nmetric = \"cpu_percent\"\nabove = {above}\nfor_secs = 0\npool = \"web\"\n"
    )
}

const POOLS: &str =
    "[global]\nsampling_interval_secs = 1\n[pools.web]\nmin_agents = 1\nmax_agents = 1\n";

async fn firing(server: &Server) -> Option<Value> {
    let (_, alerts) = server.get("/api/v1/alerts").await;
    alerts
        .as_array()?
        .iter()
        .find(|a| a["rule"] == "cpu_probe" && a["state"] == "firing")
        .cloned()
}

#[tokio::test]
async fn hot_reload_applies_a_valid_change_and_keeps_the_policy_on_a_broken_one() {
    let server = Server::start_dir(&[
        ("10-pools.toml", POOLS),
        ("20-rules.toml", &rule_file("1000")),
    ]);
    let policies = server.policies_dir();
    wait_for(
        "an agent with CPU readings",
        Duration::from_secs(20),
        || async {
            let agents = server.agents().await;
            agents
                .first()
                .is_some_and(|a| a["metrics"]["cpu_percent"].is_number())
                .then_some(())
        },
    )
    .await;
    let (_, before) = server.get("/api/v1/policies").await;
    assert!(firing(&server).await.is_none());

    // A valid change: the threshold drops below any CPU reading.
    std::fs::write(policies.join("20-rules.toml"), rule_file("-1")).unwrap();
    let alert = wait_for(
        "the alert to fire after the reload",
        Duration::from_secs(10),
        || firing(&server),
    )
    .await;
    let (_, after) = server.get("/api/v1/policies").await;
    assert_ne!(after["version"], before["version"]);
    let newest = &after["history"][0];
    assert_eq!(newest["actor"], "watcher");
    assert!(
        newest["diff"].as_str().unwrap().contains("+above = -1.0"),
        "{newest}"
    );
    let reloaded_ms = newest["ts_ms"].as_i64().unwrap();
    let seen_after_ms = alert["since_ms"].as_i64().unwrap() - reloaded_ms;
    assert!(
        seen_after_ms <= 1_500,
        "alert actor saw the new threshold {seen_after_ms} ms after the reload"
    );

    // A broken change: rejected, the running policy stays, the errors are visible.
    std::fs::write(
        policies.join("20-rules.toml"),
        "[[alerts]]\nname = \"cpu_probe\"\nmetrc = \"x\"\n",
    )
    .unwrap();
    let failed = wait_for(
        "the reload error to show",
        Duration::from_secs(10),
        || async {
            let (_, status) = server.get("/api/v1/policies").await;
            (!status["last_reload_error"].is_null()).then_some(status)
        },
    )
    .await;
    assert_eq!(
        failed["version"], after["version"],
        "the running policy stays"
    );
    let errors = failed["last_reload_error"]["errors"].as_array().unwrap();
    let located: Vec<(u64, &str)> = errors
        .iter()
        .inspect(|e| assert!(e["file"].as_str().unwrap().ends_with("20-rules.toml")))
        .map(|e| (e["line"].as_u64().unwrap(), e["field"].as_str().unwrap()))
        .collect();
    assert_eq!(
        located,
        [(1, "alerts[0]"), (1, "alerts[0]"), (3, "alerts[0].metrc")],
        "missing metric and above, unknown metrc"
    );
    assert!(firing(&server).await.is_some(), "the old rule still fires");

    // The same through the API: reload refuses with 422 and the errors.
    let response = server.post("/api/v1/policies/reload", "").await;
    assert_eq!(response.0, 422, "{}", response.1);
    assert_eq!(response.1["error"]["code"], "invalid_policy");
}

#[tokio::test]
async fn validate_checks_a_candidate_without_applying_it() {
    let server = Server::start_dir(&[("10-pools.toml", POOLS)]);
    let (_, before) = server.get("/api/v1/policies").await;

    let (status, verdict) = server
        .post("/api/v1/policies/validate", "[pools.web]\nmax_agents = 0\n")
        .await;
    assert_eq!(status, 200);
    assert_eq!(verdict["valid"], false);
    assert_eq!(verdict["errors"][0]["line"], 2);
    assert_eq!(verdict["errors"][0]["field"], "pools.web.max_agents");

    let candidate =
        "[[alerts]]\nname = \"x\"\nmetric = \"cpu_percent\"\nabove = 5\npool = \"web\"\n";
    let (status, verdict) = server
        .post("/api/v1/policies/validate?file=30-new.toml", candidate)
        .await;
    assert_eq!(status, 200);
    assert_eq!(verdict["valid"], true, "{verdict}");
    let (_, after) = server.get("/api/v1/policies").await;
    assert_eq!(after["version"], before["version"], "nothing applied");
    assert!(after["policy"]["alerts"].as_array().unwrap().is_empty());
}
