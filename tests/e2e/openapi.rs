//! The OpenAPI document against the running server: schemathesis (PyPI) generates requests
//! for every documented route, with an admin token, and checks that none gets a server error
//! and that every answer matches the document (status, media type, headers, body schema).

use std::process::Command;

use crate::util::Server;

const POLICY: &str = r#"
[global]
sampling_interval_secs = 1

[pools.edge]
min_agents = 0
max_agents = 5
driver = { type = "none" }
"#;

#[test]
fn schemathesis_finds_no_server_error_and_no_answer_that_breaks_the_document() {
    let server = Server::start(POLICY);
    let schemathesis = Command::new("schemathesis").arg("--version").output();
    assert!(
        schemathesis.is_ok_and(|o| o.status.success()),
        "schemathesis is missing: run scripts/test, which installs it (PyPI)"
    );
    // It keeps its run's state in the working directory: a scratch one.
    let scratch = tempfile::tempdir().unwrap();
    let output = Command::new("schemathesis")
        .current_dir(scratch.path())
        .arg("run")
        .arg(format!("{}/api/v1/openapi.json", server.url))
        .args(["-H", &format!("Authorization: Bearer {}", server.token)])
        .args([
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,\
             response_headers_conformance,response_schema_conformance",
            "--max-examples",
            "40",
            "--workers",
            "1",
            "--seed",
            "20261206",
            "--no-color",
        ])
        .output()
        .expect("run schemathesis");
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "schemathesis failed:\n{report}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // It reached the routes: every operation was tested.
    let tested = report
        .lines()
        .find_map(|l| l.trim().strip_prefix("Tested: "))
        .and_then(|n| n.trim().parse::<usize>().ok())
        .unwrap_or_else(|| panic!("no 'Tested:' line in:\n{report}"));
    assert!(tested >= 30, "only {tested} operations tested:\n{report}");
    assert!(
        !server.log_text().contains("panicked"),
        "{}",
        server.log_text()
    );
}

#[tokio::test]
async fn every_route_the_document_keeps_from_viewers_refuses_a_viewer_before_reading_it() {
    let secrets = tempfile::tempdir().unwrap();
    let file = secrets.path().join("vera.token");
    std::fs::write(&file, "vera-secret\n").unwrap();
    let server = Server::start(&format!(
        "{POLICY}[[global.tokens]]\nname = \"vera\"\nrole = \"viewer\"\ntoken_file = \"{}\"\n",
        file.display()
    ));
    let (status, doc) = server.get_as("/api/v1/openapi.json", None).await;
    assert_eq!(status, 200, "the document needs no token");
    let client = crate::util::client();
    let mut refused = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let description = op["description"].as_str().unwrap_or_default();
            let Some(role) = description
                .split("Needs a token of role ")
                .nth(1)
                .and_then(|r| r.split(' ').next())
            else {
                continue;
            };
            // Any id will do: the role is checked before the path, the query or the body.
            let url = format!("{}{}", server.url, path.replace(['{', '}'], ""));
            let request = match method.as_str() {
                "post" => client.post(&url).body("not even JSON"),
                "delete" => client.delete(&url),
                _ => client.get(&url),
            };
            let response = request.bearer_auth("vera-secret").send().await.unwrap();
            let status = response.status().as_u16();
            let body: serde_json::Value = response.json().await.unwrap_or_default();
            if role == "viewer" {
                assert_ne!(status, 403, "{method} {path}: a viewer may: {body}");
                continue;
            }
            assert_eq!(status, 403, "{method} {path} needs {role}: {body}");
            assert_eq!(body["error"]["code"], "forbidden", "{method} {path}");
            refused += 1;
        }
    }
    assert!(refused >= 12, "only {refused} routes are above viewer");
    let (status, _) = server.get_as("/api/v1/agents", None).await;
    assert_eq!(status, 401);
}
