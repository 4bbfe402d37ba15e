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
