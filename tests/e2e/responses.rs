//! The REST API's JSON stays the same: each GET route's response, reduced to its shape (every
//! field's name and JSON type, maps by their value shape), is compared with the shape recorded
//! in `tests/e2e/responses/`. A field renamed, retyped, added or dropped by a change inside the
//! controller fails here. To accept an intended change of the API, rerun with
//! `SWARMPILOT_RECORD_RESPONSES=1` and commit the new files with a reason.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Value, json};

use crate::gate::{agents_up, wait_state};
use crate::util::{Server, wait_for};

/// Fields whose objects are maps keyed by data (agent ids, metric names, labels): their
/// shape is the shape of their values.
const MAPS: &[&str] = &[
    "metrics",
    "anomaly_scores",
    "weights",
    "labels",
    "host",
    "channels",
    "inputs",
    "files",
    "by_state",
];

/// The shape of `value`: types for scalars, one merged shape for an array's items.
fn shape(value: &Value, field: &str) -> Value {
    match value {
        Value::Null => json!("null"),
        Value::Bool(_) => json!("bool"),
        Value::Number(_) => json!("number"),
        Value::String(_) => json!("string"),
        Value::Array(items) => {
            let merged = items
                .iter()
                .map(|item| shape(item, field))
                .reduce(|a, b| merge(&a, &b));
            json!([merged.unwrap_or(Value::Null)])
        }
        Value::Object(map) if MAPS.contains(&field) => {
            let merged = map
                .values()
                .map(|v| shape(v, ""))
                .reduce(|a, b| merge(&a, &b));
            json!({ "*": merged.unwrap_or(Value::Null) })
        }
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(key, v)| (key.clone(), shape(v, key)))
                .collect(),
        ),
    }
}

/// Two shapes as one: objects by the union of their fields (a field missing from one side
/// is `absent` there), differing scalars as `a|b`.
fn merge(a: &Value, b: &Value) -> Value {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            Value::Object(
                keys.into_iter()
                    .map(|k| {
                        let absent = json!("absent");
                        let merged =
                            merge(x.get(k).unwrap_or(&absent), y.get(k).unwrap_or(&absent));
                        (k.clone(), merged)
                    })
                    .collect(),
            )
        }
        (Value::Array(x), Value::Array(y)) => match (x.first(), y.first()) {
            (Some(Value::Null) | None, Some(other)) | (Some(other), Some(Value::Null) | None) => {
                json!([other])
            }
            (Some(p), Some(q)) => json!([merge(p, q)]),
            (None, None) => json!([null]),
        },
        (Value::String(x), Value::String(y)) => {
            let types: BTreeSet<&str> = x.split('|').chain(y.split('|')).collect();
            json!(types.into_iter().collect::<Vec<_>>().join("|"))
        }
        // An object or array on one side and a scalar type on the other.
        (structured, Value::String(t)) | (Value::String(t), structured) => {
            json!({ "either": [t, structured] })
        }
        _ => a.clone(),
    }
}

/// Whether an answered shape is the recorded one; an empty list (`[null]`) fits any list,
/// since whether a list has items yet (minute rollups, recommendations) is a matter of time,
/// and a recorded union of types (`null|number`) takes any of them.
fn fits(got: &Value, want: &Value) -> bool {
    match (got, want) {
        (Value::Array(g), Value::Array(_)) if g.first().is_none_or(Value::is_null) => true,
        // An empty map fits any map.
        (Value::Object(g), Value::Object(_))
            if g.len() == 1 && g.get("*") == Some(&Value::Null) =>
        {
            true
        }
        (Value::Array(g), Value::Array(w)) => match (g.first(), w.first()) {
            (Some(g), Some(w)) => fits(g, w),
            _ => false,
        },
        (Value::Object(g), Value::Object(w)) => {
            g.len() == w.len() && g.iter().all(|(k, v)| w.get(k).is_some_and(|w| fits(v, w)))
        }
        // A union recorded (`null|number`) takes either type.
        (Value::String(g), Value::String(w)) => {
            let allowed: BTreeSet<&str> = w.split('|').collect();
            g.split('|').all(|t| allowed.contains(t))
        }
        _ => got == want,
    }
}

fn recorded(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/e2e/responses")
        .join(format!("{name}.json"))
}

#[tokio::test]
async fn every_get_route_answers_the_json_shape_recorded_before() {
    let policy = "[global]\nsampling_interval_secs = 1\n\
         [pools.web]\nmin_agents = 2\nmax_agents = 2\n\
         [[alerts]]\nname = \"mem_tiny\"\nmetric = \"memory_percent\"\nabove = 0.001\n\
         level = \"warning\"\npool = \"web\"\n";
    let server = Server::start(policy);
    let agents = agents_up(&server, 2).await;
    let agent = agents[0]["id"].as_str().unwrap().to_string();
    let silence = json!({"matchers": [{"name": "rule", "value": "nothing", "is_regex": false}],
                         "ends_at": "2999-01-01T00:00:00Z", "comment": "shape"});
    let (status, _) = server.post_json("/api/v1/silences", &silence).await;
    assert_eq!(status, 201);
    let raise = json!({"pool": "web", "change": {"type": "adjust_threshold", "rule": "mem_tiny", "to": 1000}});
    let (status, action) = server.post_json("/api/v1/actions", &raise).await;
    assert_eq!(status, 202, "{action}");
    let id = action["id"].as_i64().unwrap();
    wait_state(&server, id, "applied", 30).await;
    // Every list the routes answer has items, so each item's shape is recorded.
    wait_for(
        "alerts, samples and a series",
        Duration::from_secs(30),
        || async {
            let (_, alerts) = server.get("/api/v1/alerts").await;
            let (_, series) = server
                .get(&format!("/api/v1/agents/{agent}/series/cpu_percent"))
                .await;
            let recent = series["recent"].as_array().map_or(0, Vec::len);
            (alerts.as_array().is_some_and(|a| !a.is_empty()) && recent > 1).then_some(())
        },
    )
    .await;

    let routes: BTreeMap<&str, String> = [
        ("healthz", "/healthz".to_string()),
        ("agents", "/api/v1/agents".into()),
        ("agent", format!("/api/v1/agents/{agent}")),
        (
            "series",
            format!("/api/v1/agents/{agent}/series/cpu_percent"),
        ),
        ("pools", "/api/v1/pools".into()),
        ("recommendations", "/api/v1/recommendations".into()),
        ("notifications", "/api/v1/notifications".into()),
        ("actions", "/api/v1/actions".into()),
        ("action", format!("/api/v1/actions/{id}")),
        ("automation", "/api/v1/automation".into()),
        ("alerts", "/api/v1/alerts".into()),
        ("silences", "/api/v1/silences".into()),
        ("log", "/api/v1/log".into()),
        ("policies", "/api/v1/policies".into()),
        ("system", "/api/v1/system".into()),
        ("alert_history", "/api/v1/alerts/history".into()),
    ]
    .into_iter()
    .collect();
    let record = std::env::var_os("SWARMPILOT_RECORD_RESPONSES").is_some();
    let mut changed = Vec::new();
    for (name, path) in &routes {
        let (status, body) = server.get(path).await;
        assert_eq!(status, 200, "{path}: {body}");
        let got = shape(&body, "");
        let file = recorded(name);
        let want: Option<Value> = std::fs::read_to_string(&file)
            .ok()
            .and_then(|text| serde_json::from_str(&text).ok());
        let fitting = want.as_ref().is_some_and(|want| fits(&got, want));
        if record {
            // A shape the answer still fits is kept: an empty list now (no rollup yet) must not
            // replace the item shape recorded before.
            if !fitting {
                let text = serde_json::to_string_pretty(&got).unwrap() + "\n";
                std::fs::write(&file, text).unwrap();
            }
            continue;
        }
        let Some(want) = want else {
            panic!(
                "{}: no recorded shape; record with SWARMPILOT_RECORD_RESPONSES=1",
                file.display()
            );
        };
        if !fitting {
            changed.push(format!(
                "{path}:\nrecorded {}\nanswered {}",
                serde_json::to_string_pretty(&want).unwrap(),
                serde_json::to_string_pretty(&got).unwrap()
            ));
        }
    }
    assert!(changed.is_empty(), "{}", changed.join("\n\n"));
}

#[test]
fn shapes_see_renames_retypes_and_merge_optional_fields() {
    let a = json!([{"id": 1, "pool": "w", "metrics": {"cpu": 1.0}, "pid": 3}]);
    let b = json!([{"id": 1, "pool": "w", "metrics": {"mem": 2.0}, "pid": null}]);
    let renamed = json!([{"id": 1, "group": "w", "metrics": {}, "pid": 3}]);
    assert_eq!(
        merge(&shape(&a, ""), &shape(&b, "")),
        json!([{"id": "number", "metrics": {"*": "number"}, "pid": "null|number", "pool": "string"}])
    );
    assert_ne!(shape(&a, ""), shape(&renamed, ""));
    assert_ne!(
        shape(&a, ""),
        shape(
            &json!([{"id": "1", "pool": "w", "metrics": {}, "pid": 3}]),
            ""
        )
    );
}
