use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};

use crate::util::{Run, Server, swarmpilot, wait_for};

const POLICY: &str = r#"
[global]
sampling_interval_secs = 1

[pools.web]
min_agents = 2
max_agents = 3

[automation.verification]
window_secs = 2
"#;

/// A server whose policy names three people by token file: olga (operator), vera (viewer)
/// and ann (approver).
struct Fleet {
    server: Server,
    secrets: tempfile::TempDir,
}

impl Fleet {
    async fn start() -> Fleet {
        let secrets = tempfile::tempdir().unwrap();
        let mut policy = POLICY.to_string();
        for (name, role) in [
            ("olga", "operator"),
            ("vera", "viewer"),
            ("ann", "approver"),
        ] {
            let file = secrets.path().join(format!("{name}.token"));
            std::fs::write(&file, format!("{name}-secret\n")).unwrap();
            policy.push_str(&format!(
                "[[global.tokens]]\nname = \"{name}\"\nrole = \"{role}\"\ntoken_file = \"{}\"\n",
                file.display()
            ));
        }
        let server = Server::start(&policy);
        wait_for("two agents", Duration::from_secs(20), || async {
            (server.agents().await.len() == 2).then_some(())
        })
        .await;
        Fleet { server, secrets }
    }

    fn token_file(&self, name: &str) -> PathBuf {
        self.secrets.path().join(format!("{name}.token"))
    }

    /// Olga asks for `change` by hand; returns the action as the API answers it.
    async fn request(&self, change: Value) -> Value {
        let body = json!({"pool": "web", "change": change});
        let (status, action) = self
            .server
            .post_json_as("/api/v1/actions", &body, "olga-secret")
            .await;
        assert_eq!(status, 202, "{action}");
        action
    }

    async fn state_of(&self, id: i64) -> String {
        let (_, action) = self.server.get(&format!("/api/v1/actions/{id}")).await;
        action["state"].as_str().unwrap_or_default().to_string()
    }

    async fn wait_state(&self, id: i64, state: &str) {
        wait_for(
            &format!("action {id} to be {state}"),
            Duration::from_secs(40),
            || async { (self.state_of(id).await == state).then_some(()) },
        )
        .await;
    }

    /// Runs `swarmpilot actions ARGS` against this server as `who`, by token file.
    async fn cli_as(&self, who: &str, args: &[&str]) -> Run {
        let file = self.token_file(who);
        let mut all = vec!["--url", &self.server.url, "--token-file"];
        all.push(file.to_str().unwrap());
        all.extend_from_slice(args);
        actions(&all, &[]).await
    }
}

/// Runs `swarmpilot actions ARGS` with `env` set and nothing inherited that would choose
/// the controller or the token.
async fn actions(args: &[&str], env: &[(&str, &str)]) -> Run {
    let all: Vec<&str> = std::iter::once("actions")
        .chain(args.iter().copied())
        .collect();
    swarmpilot(&all, env).await
}

/// Asserts `needles` occur in `text` in this order, where every run of spaces counts as one
/// (the columns are padded to their widest cell).
fn in_order(text: &str, needles: &[&str]) {
    let squeeze = |s: &str| {
        s.split(' ')
            .filter(|w| !w.is_empty())
            .collect::<Vec<_>>()
            .join(" ")
    };
    let text = &text.lines().map(squeeze).collect::<Vec<_>>().join("\n");
    let mut from = 0;
    for needle in needles {
        let at = text[from..]
            .find(needle)
            .unwrap_or_else(|| panic!("{needle:?} not found in order in:\n{text}"));
        from += at + needle.len();
    }
}

#[tokio::test]
async fn actions_cli_lists_approves_and_shows_a_pending_restart() {
    let fleet = Fleet::start().await;
    let agent = fleet.server.agents().await[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    // Olga is an operator, not an approver: restarting one of two live agents is medium risk.
    let action = fleet
        .request(json!({"type": "restart", "agent": agent}))
        .await;
    assert_eq!(action["state"], "pending_approval", "{action}");
    assert_eq!(action["risk"]["class"], "medium", "{action}");
    let id = action["id"].as_i64().unwrap();

    let list = fleet
        .cli_as("vera", &["list", "--status", "pending_approval"])
        .await;
    assert_eq!(list.code, 0, "{}", list.stderr);
    let lines: Vec<&str> = list.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{}", list.stdout);
    assert!(lines[0].starts_with("ID  STATE"), "{}", list.stdout);
    // Cells are separated by two or more spaces; no cell holds two spaces in a row.
    let row: Vec<&str> = lines[1]
        .split("  ")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect();
    let restart = format!("restart {agent}");
    assert_eq!(
        row[..5],
        [
            id.to_string().as_str(),
            "pending_approval",
            "restart",
            "web",
            restart.as_str()
        ],
        "{}",
        list.stdout
    );
    assert!(row[5].ends_with(" medium"), "{}", list.stdout);
    assert!(row[6].starts_with("expires in 1"), "{}", list.stdout);

    // A viewer may look but not decide; the token comes from the environment here.
    let id_arg = id.to_string();
    let url = fleet.server.url.clone();
    let refused = actions(
        &["approve", &id_arg, "--url", &url],
        &[("SWARMPILOT_TOKEN", "vera-secret")],
    )
    .await;
    assert_eq!(refused.code, 1, "{}", refused.stdout);
    assert_eq!(
        refused.stderr,
        "error: 403 forbidden: vera has role viewer; this needs approver or above\n"
    );
    assert_eq!(fleet.state_of(id).await, "pending_approval");

    let approved = fleet
        .cli_as("ann", &["approve", &id_arg, "--comment", "looks fine"])
        .await;
    assert_eq!(approved.code, 0, "{}", approved.stderr);
    let expected = format!("action {id}: approved by ann (1 of 1) → ");
    assert!(
        approved.stdout.starts_with(&expected),
        "{}",
        approved.stdout
    );
    assert_eq!(approved.stdout.lines().count(), 1, "{}", approved.stdout);
    fleet.wait_state(id, "applied").await;

    // The admin token, found in the controller's data directory.
    let data_dir = fleet.server.data_dir.to_str().unwrap().to_string();
    let show = actions(
        &["show", &id_arg, "--url", &url, "--data-dir", &data_dir],
        &[],
    )
    .await;
    assert_eq!(show.code, 0, "{}", show.stderr);
    let text = &show.stdout;
    in_order(
        text,
        &[
            &format!("action {id}: {restart} in pool web\n"),
            "state applied\n",
            "reason requested by olga\n",
            "risk 0.55 medium: needs 1 approval\n",
            "blast_radius",
            "approvals ann at ",
            "evidence {",
            "\"requested_by\": \"olga\"",
            "log\n",
            " proposed olga requested by olga\n",
            " proposed → pending_approval policy ",
            " pending_approval → approved ann approved by ann (1 of 1): looks fine\n",
            " approved → applying auto ",
            " applying → verifying auto ",
            " verifying → applied auto ",
        ],
    );

    let json = fleet.cli_as("vera", &["show", &id_arg, "--json"]).await;
    assert_eq!(json.code, 0, "{}", json.stderr);
    let shown: Value = serde_json::from_str(&json.stdout).expect("JSON");
    assert_eq!(
        (shown["id"].as_i64(), shown["state"].as_str()),
        (Some(id), Some("applied"))
    );
}

#[tokio::test]
async fn actions_cli_rejects_a_pending_action_and_rolls_back_a_scale() {
    let fleet = Fleet::start().await;
    let agent = fleet.server.agents().await[1]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let pending = fleet
        .request(json!({"type": "restart", "agent": agent}))
        .await;
    assert_eq!(pending["state"], "pending_approval", "{pending}");
    let pending_id = pending["id"].as_i64().unwrap();
    let id = pending_id.to_string();
    let rejected = fleet
        .cli_as("ann", &["reject", &id, "--comment", "not now"])
        .await;
    assert_eq!(rejected.code, 0, "{}", rejected.stderr);
    assert_eq!(
        rejected.stdout,
        format!("action {id}: rejected by ann → rejected\n")
    );
    let log = fleet.server.log().await;
    let row = log
        .iter()
        .find(|row| row["action_id"] == pending_id && row["to_state"] == "rejected")
        .expect("a rejected row");
    assert_eq!(row["reason"], "rejected by ann: not now");

    // A small scale-out is low risk: it applies without approval.
    let scale = fleet.request(json!({"type": "scale", "to": 3})).await;
    let scale_id = scale["id"].as_i64().unwrap();
    fleet.wait_state(scale_id, "applied").await;
    assert_eq!(fleet.server.agents().await.len(), 3);
    let scale_arg = scale_id.to_string();
    let rolled = fleet.cli_as("ann", &["rollback", &scale_arg]).await;
    assert_eq!(rolled.code, 0, "{}", rolled.stderr);
    assert_eq!(
        rolled.stdout,
        format!("action {scale_id}: rolled back by ann (scale 3→2) → rolled_back\n")
    );
    wait_for("two agents again", Duration::from_secs(20), || async {
        (fleet.server.agents().await.len() == 2).then_some(())
    })
    .await;

    let again = fleet.cli_as("ann", &["rollback", &scale_arg]).await;
    assert_eq!(again.code, 1, "{}", again.stdout);
    assert!(
        again.stderr.starts_with("error: 409 conflict: "),
        "{}",
        again.stderr
    );
    assert_eq!(again.stderr.lines().count(), 1, "{}", again.stderr);
    let missing = fleet.cli_as("vera", &["show", "999"]).await;
    assert_eq!(
        (missing.code, missing.stderr.as_str()),
        (1, "error: 404 not found: no action 999\n")
    );

    let list = fleet
        .cli_as("vera", &["list", "--json", "--limit", "2"])
        .await;
    assert_eq!(list.code, 0, "{}", list.stderr);
    let listed: Value = serde_json::from_str(&list.stdout).expect("JSON");
    let states: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["rolled_back", "rejected"], "newest first");
}

#[tokio::test]
async fn actions_cli_says_what_is_wrong_without_a_controller() {
    // A port nobody listens on: bound, noted, released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let dead = actions(&["list", "--url", &url, "--token", "x"], &[]).await;
    assert_eq!(dead.code, 1, "{}", dead.stdout);
    assert_eq!(
        dead.stderr,
        format!(
            "error: cannot reach the controller at {url}: connection refused; is it running \
             there? Pass --url URL or set SWARMPILOT_URL\n"
        )
    );

    let no_token = actions(&["list", "--url", &url], &[]).await;
    assert_eq!(no_token.code, 1);
    assert!(
        no_token.stderr.starts_with("error: no API token: "),
        "{}",
        no_token.stderr
    );
    let missing_file = Path::new("/nonexistent/swarmpilot.token");
    let unreadable = actions(
        &["list", "--token-file", missing_file.to_str().unwrap()],
        &[],
    )
    .await;
    assert!(
        unreadable
            .stderr
            .starts_with("error: cannot read the token file /nonexistent/"),
        "{}",
        unreadable.stderr
    );

    let bad_id = actions(&["approve", "seven", "--token", "x"], &[]).await;
    assert_eq!(bad_id.code, 2, "a usage error");
    assert!(
        bad_id.stderr.contains("invalid value 'seven' for '<ID>'"),
        "{}",
        bad_id.stderr
    );
}
