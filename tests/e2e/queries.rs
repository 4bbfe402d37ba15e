//! Query parameters under arbitrary input: every GET route of the OpenAPI document, sent
//! generated values for each of its query parameters (and unknown ones), answers 2xx or a
//! 4xx whose JSON body says what is wrong, never a 5xx, and the controller keeps serving.

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::Value;

use crate::util::{Server, client};

const POLICY: &str = "[pools.external]\nmin_agents = 0\ndriver = { type = \"none\" }\n";

/// A value a hostile or careless client might send for any parameter.
fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        any::<i64>().prop_map(|n| n.to_string()),
        any::<u64>().prop_map(|n| format!("{n}{n}")),
        any::<f64>().prop_map(|f| f.to_string()),
        Just("-1".to_string()),
        Just("NaN".to_string()),
        Just("1e309".to_string()),
        "[a-z_]{1,12}",
        "\\PC{0,40}",
        Just("%00%ff%".to_string()),
        Just("a\u{0}b".to_string()),
        Just("x".repeat(10_000)),
    ]
}

/// Percent-encodes `text` for a query string (what a client library would send).
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The GET routes with their query parameters' names; path parameters get `x`.
async fn get_routes(server: &Server) -> Vec<(String, Vec<String>)> {
    let (status, doc) = server.get("/api/v1/openapi.json").await;
    assert_eq!(status, 200);
    let mut routes = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        let Some(get) = item.get("get") else { continue };
        let params = get["parameters"].as_array().cloned().unwrap_or_default();
        let query: Vec<String> = params
            .iter()
            .filter(|p| p["in"] == "query")
            .filter_map(|p| p["name"].as_str().map(str::to_string))
            .collect();
        // The stream upgrades to a WebSocket; its query is tested in `stream`.
        if path.ends_with("/stream") {
            continue;
        }
        let concrete = path
            .split('/')
            .map(|part| if part.starts_with('{') { "x" } else { part })
            .collect::<Vec<_>>()
            .join("/");
        routes.push((concrete, query));
    }
    assert!(routes.len() > 10, "{routes:?}");
    routes
}

#[test]
fn every_get_route_answers_arbitrary_query_parameters_with_2xx_or_a_named_4xx() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let server = Server::start(POLICY);
    let base = server.url.clone();
    let token = server.token.clone();
    let routes = runtime.block_on(get_routes(&server));
    let http = client();
    for (path, names) in routes {
        // Every parameter once with NUL, which a PostgreSQL store cannot take as text.
        for name in &names {
            let url = format!("{base}{path}?{name}=a%00b");
            let (status, body) = runtime.block_on(async {
                let answer = http.get(&url).bearer_auth(&token).send().await.unwrap();
                (answer.status().as_u16(), answer.text().await.unwrap())
            });
            assert!(status < 500, "{url} answered {status}: {body}");
        }
        let mut runner = TestRunner::new(Config {
            cases: 24,
            failure_persistence: None,
            ..Config::default()
        });
        let mut known = names.clone();
        known.push("unknown_parameter".into());
        let pairs = proptest::collection::vec((proptest::sample::select(known), value()), 1..4);
        let outcome = runner.run(&pairs, |pairs| {
            let query: Vec<String> = pairs
                .iter()
                .map(|(name, value)| format!("{name}={}", encode(value)))
                .collect();
            let url = format!("{base}{path}?{}", query.join("&"));
            let (status, body) = runtime.block_on(async {
                let answer = http.get(&url).bearer_auth(&token).send().await.unwrap();
                let status = answer.status().as_u16();
                let body = answer.bytes().await.unwrap();
                (status, body)
            });
            prop_assert!(status < 500, "{url} answered {status}: {body:?}");
            if (400..500).contains(&status) {
                let json: Value = serde_json::from_slice(&body)
                    .map_err(|e| TestCaseError::fail(format!("{url}: {status} not JSON: {e}")))?;
                prop_assert!(json["error"]["code"].is_string(), "{url}: {json}");
                prop_assert!(json["error"]["message"].is_string(), "{url}: {json}");
            }
            Ok(())
        });
        if let Err(failure) = outcome {
            panic!("{path}: {failure}");
        }
    }
    // Still serving.
    let (status, _) = runtime.block_on(server.get("/api/v1/system"));
    assert_eq!(status, 200);
}
