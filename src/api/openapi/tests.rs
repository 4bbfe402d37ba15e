//! The document made from the route tables.

use super::*;

/// Every `$ref` anywhere in `value`.
fn refs<'a>(value: &'a Value, out: &mut Vec<&'a str>) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(r)) = map.get("$ref") {
                out.push(r);
            }
            map.values().for_each(|v| refs(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
        _ => {}
    }
}

#[test]
fn the_document_names_every_route_and_every_reference_resolves() {
    let doc = crate::api::routes::document();
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().unwrap();
    for (path, method) in [
        ("/api/v1/agents", "get"),
        ("/api/v1/actions/{id}/approve", "post"),
        ("/api/v1/silences/{id}", "delete"),
        ("/api/v1/stream/ticket", "post"),
        ("/v1/metrics", "post"),
        ("/healthz", "get"),
    ] {
        assert!(paths[path][method].is_object(), "{method} {path} missing");
    }
    let mut found = Vec::new();
    refs(&doc, &mut found);
    assert!(!found.is_empty());
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    for r in found {
        let name = r.strip_prefix("#/components/schemas/").unwrap_or(r);
        assert!(schemas.contains_key(name), "{r} does not resolve");
    }
    // A query struct's fields are parameters; a role above viewer may answer 403.
    let approve = &paths["/api/v1/actions/{id}/approve"]["post"];
    assert!(approve["responses"]["403"].is_object(), "{approve}");
    let list = &paths["/api/v1/agents"]["get"]["parameters"];
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["after", "limit", "pool", "status"]);
    assert_eq!(paths["/healthz"]["get"]["security"], json!([]));
}

/// SECURITY.md's table of routes and the least role each needs, made from the route tables.
fn role_table() -> String {
    let doc = crate::api::routes::document();
    let mut rows = Vec::new();
    for (path, operations) in doc["paths"].as_object().unwrap() {
        for (method, operation) in operations.as_object().unwrap() {
            let role = operation["x-role"].as_str().unwrap_or("none (no token)");
            rows.push((path.clone(), method.to_uppercase(), role.to_string()));
        }
    }
    rows.sort();
    let mut table = String::from("| Method | Path | Least role |\n|---|---|---|\n");
    for (path, method, role) in rows {
        table.push_str(&format!("| {method} | `{path}` | {role} |\n"));
    }
    table
}

#[test]
fn security_md_names_the_least_role_of_every_route() {
    const BEGIN: &str = "<!-- roles:begin (made from the route tables by a test) -->\n";
    const END: &str = "<!-- roles:end -->";
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/SECURITY.md");
    let text = std::fs::read_to_string(path).unwrap();
    let (Some(begin), Some(end)) = (text.find(BEGIN), text.find(END)) else {
        panic!("SECURITY.md lacks the markers of its role table");
    };
    let table = role_table();
    if std::env::var_os("SWARMPILOT_RECORD_RESPONSES").is_some() {
        let updated = format!("{}{BEGIN}{table}{}", &text[..begin], &text[end..]);
        std::fs::write(path, updated).unwrap();
        return;
    }
    assert_eq!(
        &text[begin + BEGIN.len()..end],
        table,
        "SECURITY.md's role table differs from the routes: run this test with \
         SWARMPILOT_RECORD_RESPONSES=1 to write it"
    );
}
