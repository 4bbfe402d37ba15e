//! The applied-optimization and rollback log over REST (pages, filters, `since`, CSV and
//! JSON exports with each row's change and inverse) and the dry run.

use std::time::Duration;

use serde_json::{Value, json};

use crate::gate::{agents_up, wait_state, with_people};
use crate::util::{Server, wait_for};

#[tokio::test]
async fn the_log_pages_filters_and_exports_csv() {
    let secrets = tempfile::tempdir().unwrap();
    let policy = with_people(secrets.path(), "").replace("min_agents = 2", "min_agents = 1");
    let server = Server::start(&policy);
    agents_up(&server, 1).await;
    let grow = json!({"pool": "web", "change": {"type": "scale", "to": 2}});
    let (_, action) = server.post_json("/api/v1/actions", &grow).await;
    let id = action["id"].as_i64().unwrap();
    assert_eq!(action["expected_effect"], "pool web from 1 to 2 agents");
    wait_state(&server, id, "applied", 40).await;

    let client = reqwest::Client::new();
    let get = |path: String| {
        client
            .get(format!("{}{path}", server.url))
            .bearer_auth(&server.token)
            .send()
    };
    // Page by page, newest first, following the Link header to the end.
    let seqs: Vec<i64> = server
        .pages("/api/v1/log?limit=2", 2)
        .await
        .concat()
        .iter()
        .map(|r| r["seq"].as_i64().unwrap())
        .collect();
    let all: Vec<i64> = server
        .log()
        .await
        .iter()
        .map(|r| r["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(
        seqs, all,
        "the pages are the whole log, newest first, once each"
    );
    assert!(seqs.windows(2).all(|w| w[0] > w[1]));
    // The actions page the same way, newest first, one at a time.
    let ids = |pages: Vec<Vec<Value>>| -> Vec<i64> {
        pages
            .concat()
            .iter()
            .map(|a| a["id"].as_i64().unwrap())
            .collect()
    };
    let paged = ids(server.pages("/api/v1/actions?limit=1", 1).await);
    let (_, whole) = server.get("/api/v1/actions").await;
    assert_eq!(paged, ids(vec![whole.as_array().unwrap().clone()]));
    assert!(
        paged.len() >= 2 && paged.windows(2).all(|w| w[0] > w[1]),
        "{paged:?}"
    );

    let applied: Vec<Value> = get("/api/v1/log?status=applied&kind=scale".into())
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        applied.len(),
        2,
        "the first fill and the request: {applied:?}"
    );
    assert!(applied.iter().all(|r| r["to_state"] == "applied"));

    let csv = get("/api/v1/log?format=csv&pool=web".into()).await.unwrap();
    assert_eq!(csv.status(), 200);
    assert!(
        csv.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let text = csv.text().await.unwrap();
    let mut lines = text.lines();
    assert_eq!(
        lines.next().unwrap(),
        "seq,ts_ms,time,action_id,kind,pool,agent,from_state,to_state,reason,actor,change,inverse"
    );
    // The request's rows end with its change and inverse, as JSON text in quoted cells.
    let requested = format!(",{id},scale,web,");
    let row = lines
        .clone()
        .find(|l| l.contains(&requested))
        .expect("a row of the request");
    assert!(
        row.ends_with(
            r#","{""type"":""scale"",""from"":1,""to"":2}","{""type"":""scale"",""from"":2,""to"":1}""#
        ),
        "{row}"
    );
    assert_eq!(lines.count(), all.len());

    // In JSON, each row carries them as objects.
    let log = server.log().await;
    let mine = log.iter().find(|r| r["action_id"] == id).unwrap();
    assert_eq!(mine["change"], json!({"type": "scale", "from": 1, "to": 2}));
    assert_eq!(
        mine["inverse"],
        json!({"type": "scale", "from": 2, "to": 1})
    );

    // A JSON export without a limit is the whole selection, like the CSV one: no pages.
    let export = get("/api/v1/log?format=json&pool=web".into())
        .await
        .unwrap();
    assert!(export.headers().get("link").is_none());
    let exported: Vec<Value> = export.json().await.unwrap();
    assert_eq!(exported.len(), all.len());
    let paged = get("/api/v1/log?format=json&limit=2".into()).await.unwrap();
    assert!(paged.headers().get("link").is_some(), "a limit still pages");

    // since= keeps the rows at or after that time, in RFC 3339 or epoch milliseconds.
    let ms = |r: &Value| r["ts_ms"].as_i64().unwrap();
    let oldest_ms = ms(log.last().unwrap());
    let pivot = log.iter().rev().find(|r| ms(r) > oldest_ms).unwrap();
    let pivot_ms = ms(pivot);
    let expected: Vec<i64> = log
        .iter()
        .filter(|r| ms(r) >= pivot_ms)
        .map(|r| r["seq"].as_i64().unwrap())
        .collect();
    assert!(
        expected.len() < log.len(),
        "the pivot leaves older rows out"
    );
    for since in [
        pivot["time"].as_str().unwrap().to_string(),
        pivot_ms.to_string(),
    ] {
        let rows: Vec<Value> = get(format!("/api/v1/log?since={since}&limit=1000"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let seqs: Vec<i64> = rows.iter().map(|r| r["seq"].as_i64().unwrap()).collect();
        assert_eq!(seqs, expected, "since={since}");
    }
    let (status, body) = server.get("/api/v1/log?since=yesterday").await;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (400, Some("since"))
    );

    let (status, body) = server.get("/api/v1/log?status=done").await;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (400, Some("status"))
    );
}

#[tokio::test]
async fn a_dry_run_logs_what_it_would_do_and_applies_nothing() {
    let secrets = tempfile::tempdir().unwrap();
    let server = Server::start(&with_people(
        secrets.path(),
        "[automation]\ndry_run = true\n",
    ));
    // Proposed, then superseded in a second transaction: a read may fall between the two.
    let logged = wait_for("the dry-run proposal", Duration::from_secs(15), || async {
        let (_, actions) = server.get("/api/v1/actions").await;
        let first = actions.as_array()?.first().cloned()?;
        (first["state"] != "proposed").then_some(first)
    })
    .await;
    assert_eq!(logged["state"], "superseded");
    assert_eq!(
        logged["change"],
        json!({"type": "scale", "from": 0, "to": 2})
    );
    assert_eq!(logged["risk"]["class"], "low");
    let log = server.log().await;
    assert!(
        log[0]["reason"].as_str().unwrap().starts_with("dry run"),
        "{log:?}"
    );
    // Each optimizer tick rewrites the recommendation's at_ms: wait for two more ticks that
    // made the same recommendation and only logged it.
    let logged_ms = logged["created_ms"].as_i64().unwrap();
    wait_for(
        "two more dry-run ticks",
        Duration::from_secs(15),
        || async {
            let (_, list) = server.get("/api/v1/recommendations").await;
            let first = list.as_array()?.first()?.clone();
            let later = first["at_ms"].as_i64()? >= logged_ms + 2000;
            let logged_only = first["status"].as_str()?.starts_with("logged only");
            (later && logged_only).then_some(())
        },
    )
    .await;
    assert!(server.agents().await.is_empty(), "nothing applied");
    let (_, actions) = server.get("/api/v1/actions").await;
    assert_eq!(
        actions.as_array().unwrap().len(),
        1,
        "logged once, not every tick"
    );
}
