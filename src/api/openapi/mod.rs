//! The route table and the OpenAPI 3.1 document made from it (`GET /api/v1/openapi.json`).
//!
//! Every route is declared once, as an [`Endpoint`]: its method and path, the handler that
//! serves it, and the Rust types of its query, body and answers. The router mounts the table
//! and the document is written from the same table, with each type's JSON Schema derived
//! from the type itself (schemars, the dialect OpenAPI 3.1 uses), so the two cannot
//! disagree.

use std::sync::OnceLock;

use actix_web::{HttpResponse, Route, web};
use schemars::{JsonSchema, Schema, SchemaGenerator, generate::SchemaSettings};
use serde_json::{Map, Value, json};

use crate::policy::Role;

/// Makes a type's schema, registering what it refers to.
type SchemaFn = fn(&mut SchemaGenerator) -> Schema;

fn schema_of<T: JsonSchema>(generator: &mut SchemaGenerator) -> Schema {
    generator.subschema_for::<T>()
}

/// The body of every error answer.
#[derive(JsonSchema)]
#[allow(dead_code)]
pub struct ErrorBody {
    error: ErrorDetail,
}

/// What went wrong.
#[derive(JsonSchema)]
#[allow(dead_code)]
struct ErrorDetail {
    /// Machine-readable, e.g. `bad_request`, `not_found`, `forbidden`.
    code: String,
    /// For a person.
    message: String,
    /// The request field at fault, if one.
    field: Option<String>,
}

/// How an answer or a body is written.
#[derive(Clone, Copy)]
enum Content {
    Json(SchemaFn),
    /// Another media type, described only by its name.
    Other(&'static str),
}

struct Answer {
    status: u16,
    description: &'static str,
    content: Option<Content>,
}

/// One route: what serves it and what it takes and answers.
pub struct Endpoint {
    method: &'static str,
    path: &'static str,
    summary: &'static str,
    role: Option<Role>,
    route: fn() -> Route,
    query: Option<SchemaFn>,
    path_params: Vec<(&'static str, &'static str)>,
    /// The media types it takes, and whether a body is required.
    body: Vec<Content>,
    body_required: bool,
    answers: Vec<Answer>,
    headers: Vec<(&'static str, &'static str)>,
}

impl Endpoint {
    fn new(method: &'static str, path: &'static str, summary: &'static str) -> Self {
        Endpoint {
            method,
            path,
            summary,
            role: Some(Role::Viewer),
            route: web::get,
            query: None,
            path_params: Vec::new(),
            body: Vec::new(),
            body_required: true,
            answers: Vec::new(),
            headers: Vec::new(),
        }
    }

    /// A GET of `path` served by `route`, open to every token.
    pub fn get(path: &'static str, summary: &'static str, route: fn() -> Route) -> Self {
        Endpoint {
            route,
            ..Endpoint::new("get", path, summary)
        }
    }

    /// A POST of `path` served by `route`.
    pub fn post(path: &'static str, summary: &'static str, route: fn() -> Route) -> Self {
        Endpoint {
            route,
            ..Endpoint::new("post", path, summary)
        }
    }

    /// A DELETE of `path` served by `route`.
    pub fn delete(path: &'static str, summary: &'static str, route: fn() -> Route) -> Self {
        Endpoint {
            route,
            ..Endpoint::new("delete", path, summary)
        }
    }

    /// Needs a token of at least `role` (every route needs a token unless [`Self::open`]).
    pub fn role(mut self, role: Role) -> Self {
        self.role = Some(role);
        self
    }

    /// Needs no token.
    pub fn open(mut self) -> Self {
        self.role = None;
        self
    }

    /// Takes the query parameters of `Q` (its fields).
    pub fn query<Q: JsonSchema>(mut self) -> Self {
        self.query = Some(schema_of::<Q>);
        self
    }

    /// Takes the path parameter `name`.
    pub fn param(mut self, name: &'static str, description: &'static str) -> Self {
        self.path_params.push((name, description));
        self
    }

    /// Takes a JSON body of type `B`.
    pub fn body<B: JsonSchema>(mut self) -> Self {
        self.body.push(Content::Json(schema_of::<B>));
        self
    }

    /// Takes an optional JSON body of type `B`.
    pub fn optional_body<B: JsonSchema>(mut self) -> Self {
        self.body_required = false;
        self.body::<B>()
    }

    /// Takes a body of media type `media` (one more, when called again).
    pub fn raw_body(mut self, media: &'static str) -> Self {
        self.body.push(Content::Other(media));
        self
    }

    /// Answers `status` with a JSON `T`.
    pub fn answers<T: JsonSchema>(mut self, status: u16, description: &'static str) -> Self {
        self.answers.push(Answer {
            status,
            description,
            content: Some(Content::Json(schema_of::<T>)),
        });
        self
    }

    /// Answers `status` with a body of media type `media`.
    pub fn answers_raw(
        mut self,
        status: u16,
        media: &'static str,
        description: &'static str,
    ) -> Self {
        self.answers.push(Answer {
            status,
            description,
            content: Some(Content::Other(media)),
        });
        self
    }

    /// Answers `status` with no body.
    pub fn answers_empty(mut self, status: u16, description: &'static str) -> Self {
        self.answers.push(Answer {
            status,
            description,
            content: None,
        });
        self
    }

    /// May answer each of `statuses` with the error body.
    pub fn errors(mut self, statuses: &[u16]) -> Self {
        for &status in statuses {
            self.answers.push(Answer {
                status,
                description: reason(status),
                content: Some(Content::Json(schema_of::<ErrorBody>)),
            });
        }
        self
    }

    /// Answers header `name` on success.
    pub fn header(mut self, name: &'static str, description: &'static str) -> Self {
        self.headers.push((name, description));
        self
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        400 => "Bad request: the field at fault is named",
        401 => "No token, or an unknown one",
        403 => "The token's role may not do this",
        404 => "No such resource",
        409 => "Conflicts with the resource's state",
        413 => "The body is too large",
        415 => "Unsupported media type",
        429 => "Too many requests",
        503 => "Actuation has stopped (the store refused a write) or the controller is busy",
        _ => "Server error",
    }
}

/// Mounts every endpoint of `table` under `scope` (e.g. `/api/v1`).
pub fn mount(cfg: &mut web::ServiceConfig, table: &[Endpoint]) {
    for endpoint in table {
        cfg.route(endpoint.path, (endpoint.route)());
    }
}

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
            let operation = operation(endpoint, &mut generator);
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
                WebSocket (see DESIGN.md).",
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
            let mut needs = vec![401];
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
        "operationId": format!("{}{}", endpoint.method, endpoint.path.replace(['/', '{', '}'], "_")),
        "parameters": parameters,
        "responses": responses,
    });
    if endpoint.role.is_none() {
        op["security"] = json!([]);
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
mod tests {
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
}
