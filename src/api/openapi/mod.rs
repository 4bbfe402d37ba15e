//! The route table and the OpenAPI 3.1 document made from it (`GET /api/v1/openapi.json`).
//!
//! Every route is declared once, as an [`Endpoint`] (`endpoint.rs`): its method and path, the
//! handler that serves it, the role it needs, and the Rust types of its query, body and
//! answers. The router mounts the tables and the document is written from the same tables,
//! with each type's JSON Schema derived from the type itself (schemars, the dialect OpenAPI
//! 3.1 uses), so the routes, their roles and the document cannot disagree.

mod endpoint;

use std::sync::OnceLock;

use actix_web::HttpResponse;
use schemars::{Schema, SchemaGenerator, generate::SchemaSettings};
use serde_json::{Map, Value, json};

use crate::policy::Role;
use endpoint::{Content, ErrorBody, reason, schema_of};
pub use endpoint::{Endpoint, mount};

/// The OpenAPI 3.1 document of `tables`, each a path prefix and its endpoints.
pub fn document(tables: &[(&str, Vec<Endpoint>)]) -> Value {
    let mut generator = SchemaSettings::draft2020_12()
        .with(|s| s.definitions_path = "#/components/schemas/".into())
        .for_serialize()
        .into_generator();
    let mut paths = Map::new();
    for (prefix, table) in tables {
        for endpoint in table {
            let path = format!("{prefix}{}", endpoint.path);
            let mut operation = operation(endpoint, &mut generator);
            let id = format!(
                "{}{}",
                endpoint.method,
                path.replace(['/', '{', '}', '.'], "_")
            );
            operation["operationId"] = Value::String(id);
            let item = paths
                .entry(path)
                .or_insert_with(|| Value::Object(Map::new()));
            item[endpoint.method] = operation;
        }
    }
    let schemas: Map<String, Value> = generator.take_definitions(true).into_iter().collect();
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "swarmpilot control API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Watch a fleet of agents, approve or reject the controller's \
                actions, read its log, alerts and policy. Errors answer \
                {\"error\": {\"code\", \"message\", \"field\"}}. GET /api/v1/stream is a \
                WebSocket: a `snapshot` message, then `samples`, `fleet`, `alerts` and \
                `actions` events, each a JSON text message with its `topic`.",
        },
        "jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "An API token: the admin token in the data directory, or one \
                        of the policy's [[tokens]], whose role limits what it may do.",
                },
            },
        },
    })
}

fn operation(endpoint: &Endpoint, generator: &mut SchemaGenerator) -> Value {
    let mut parameters: Vec<Value> = endpoint
        .path_params
        .iter()
        .map(|(name, description)| {
            json!({"name": name, "in": "path", "required": true,
                   "description": description, "schema": {"type": "string"}})
        })
        .collect();
    if let Some(query) = endpoint.query {
        parameters.extend(query_parameters(query(generator), generator));
    }
    let mut responses = Map::new();
    for answer in &endpoint.answers {
        let key = answer.status.to_string();
        let mut response = responses
            .remove(&key)
            .unwrap_or_else(|| json!({"description": answer.description}));
        if let Some(content) = answer.content {
            // One status may answer several media types (JSON, CSV, PNG).
            let more = content_of(content, generator);
            match response["content"].as_object_mut() {
                Some(have) => merge_content(have, more),
                None => response["content"] = more,
            }
        }
        if (200..300).contains(&answer.status) && !endpoint.headers.is_empty() {
            let headers: Map<String, Value> = endpoint
                .headers
                .iter()
                .map(|(name, description)| {
                    (
                        name.to_string(),
                        json!({"description": description, "schema": {"type": "string"}}),
                    )
                })
                .collect();
            response["headers"] = Value::Object(headers);
        }
        responses.insert(key, response);
    }
    let mut description = endpoint.summary.to_string();
    match endpoint.role {
        Some(role) => {
            let name = serde_json::to_value(role).unwrap_or_default();
            let name = name.as_str().unwrap_or_default();
            description.push_str(&format!(" Needs a token of role {name} or above."));
            let mut needs = vec![401, 429];
            if role != Role::Viewer {
                needs.push(403);
            }
            for status in needs {
                responses
                    .entry(status.to_string())
                    .or_insert_with(|| error_answer(reason(status), generator));
            }
        }
        None => description.push_str(" Needs no token."),
    }
    let mut op = json!({
        "summary": endpoint.summary,
        "description": description,
        "parameters": parameters,
        "responses": responses,
    });
    match endpoint.role {
        None => op["security"] = json!([]),
        // The least role that may call it, for tools (SECURITY.md's table is made from it).
        Some(role) => op["x-role"] = serde_json::to_value(role).unwrap_or_default(),
    }
    if !endpoint.body.is_empty() {
        let mut content = Map::new();
        for media in &endpoint.body {
            merge_content(&mut content, content_of(*media, generator));
        }
        op["requestBody"] = json!({"required": endpoint.body_required, "content": content});
    }
    op
}

/// Adds the media types of `more` to `have`; two JSON schemas for one status become `anyOf`.
fn merge_content(have: &mut Map<String, Value>, more: Value) {
    for (media, entry) in more.as_object().cloned().unwrap_or_default() {
        match have.get_mut(&media) {
            Some(existing) => {
                let first = existing["schema"].take();
                existing["schema"] = json!({"anyOf": [first, entry["schema"].clone()]});
            }
            None => {
                have.insert(media, entry);
            }
        }
    }
}

fn error_answer(description: &str, generator: &mut SchemaGenerator) -> Value {
    json!({"description": description,
           "content": content_of(Content::Json(schema_of::<ErrorBody>), generator)})
}

fn content_of(content: Content, generator: &mut SchemaGenerator) -> Value {
    match content {
        Content::Json(schema) => json!({"application/json": {"schema": schema(generator)}}),
        // Free-form JSON (OTLP JSON, this document), or text and bytes.
        Content::Other(media) if media.ends_with("json") => {
            json!({media: {"schema": {"type": "object"}}})
        }
        Content::Other(media) => json!({media: {"schema": {"type": "string"}}}),
    }
}

/// The query parameters of a query struct's schema: one per property.
fn query_parameters(schema: Schema, generator: &SchemaGenerator) -> Vec<Value> {
    // The struct itself is a `$ref` into the definitions.
    let value = schema.to_value();
    let resolved = value
        .get("$ref")
        .and_then(Value::as_str)
        .and_then(|r| r.rsplit('/').next())
        .and_then(|name| generator.definitions().get(name).cloned())
        .unwrap_or(value);
    let required: Vec<&str> = resolved["required"]
        .as_array()
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let Some(properties) = resolved["properties"].as_object() else {
        return Vec::new();
    };
    properties
        .iter()
        .map(|(name, property)| {
            let mut property = property.clone();
            let description = property
                .as_object_mut()
                .and_then(|p| p.remove("description"))
                .unwrap_or(Value::String(String::new()));
            json!({"name": name, "in": "query", "required": required.contains(&name.as_str()),
                   "description": description, "schema": property})
        })
        .collect()
}

/// `GET /api/v1/openapi.json`: the document, written once.
pub async fn serve() -> HttpResponse {
    static DOCUMENT: OnceLock<String> = OnceLock::new();
    let text = DOCUMENT.get_or_init(|| super::routes::document().to_string());
    HttpResponse::Ok()
        .content_type("application/json")
        .body(text.clone())
}

#[cfg(test)]
mod tests;
