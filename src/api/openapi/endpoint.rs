//! One route's entry in a table: what serves it, the role it needs, what it takes and
//! answers; and mounting a table behind those roles.

use actix_web::ResponseError;
use actix_web::dev::Service;
use actix_web::{Route, web};
use futures_util::future::{Either, ready};
use schemars::{JsonSchema, Schema, SchemaGenerator};

use crate::api::admission::{admit, bound_body};
use crate::api::auth::{authenticate, throttle};
use crate::http_error::ApiError;
use crate::policy::Role;

/// Makes a type's schema, registering what it refers to.
pub(super) type SchemaFn = fn(&mut SchemaGenerator) -> Schema;

pub(super) fn schema_of<T: JsonSchema>(generator: &mut SchemaGenerator) -> Schema {
    generator.subschema_for::<T>()
}

pub(super) use crate::http_error::ErrorBody;

/// How an answer or a body is written.
#[derive(Clone, Copy)]
pub(super) enum Content {
    Json(SchemaFn),
    /// Another media type, described only by its name.
    Other(&'static str),
}

pub(super) struct Answer {
    pub(super) status: u16,
    pub(super) description: &'static str,
    pub(super) content: Option<Content>,
}

/// One route: what serves it and what it takes and answers.
pub struct Endpoint {
    pub(super) method: &'static str,
    pub(super) path: &'static str,
    pub(super) summary: &'static str,
    pub(super) role: Option<Role>,
    pub(super) route: fn() -> Route,
    pub(super) query: Option<SchemaFn>,
    pub(super) path_params: Vec<(&'static str, &'static str)>,
    /// The media types it takes, and whether a body is required.
    pub(super) body: Vec<Content>,
    pub(super) body_required: bool,
    pub(super) answers: Vec<Answer>,
    pub(super) headers: Vec<(&'static str, &'static str)>,
    /// Its handler authenticates by itself (the stream also takes a ticket).
    pub(super) own_auth: bool,
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
            own_auth: false,
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

    /// Authenticates in its handler (a ticket instead of the header); documented as `role`.
    pub fn own_auth(mut self) -> Self {
        self.own_auth = true;
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

    /// Takes a JSON body of type `B` (too large a body gets 413).
    pub fn body<B: JsonSchema>(mut self) -> Self {
        self.body.push(Content::Json(schema_of::<B>));
        self.errors(&[413])
    }

    /// Takes an optional JSON body of type `B`.
    pub fn optional_body<B: JsonSchema>(mut self) -> Self {
        self.body_required = false;
        self.body::<B>()
    }

    /// Takes a body of media type `media` (one more, when called again; too large a body
    /// gets 413).
    pub fn raw_body(mut self, media: &'static str) -> Self {
        self.body.push(Content::Other(media));
        self.errors(&[413])
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
            let error = |a: &Answer| a.status == status && a.description == reason(status);
            if self.answers.iter().any(error) {
                continue;
            }
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

pub(super) fn reason(status: u16) -> &'static str {
    match status {
        400 => "Bad request: the field at fault is named",
        401 => "No token, or an unknown one",
        403 => "The token's role may not do this",
        404 => "No such resource",
        408 => "The body did not arrive in time",
        409 => "Conflicts with the resource's state",
        413 => "The body is too large",
        415 => "Unsupported media type",
        429 => "Too many requests",
        503 => "Actuation has stopped (the store refused a write) or the controller is busy",
        _ => "Server error",
    }
}

/// Mounts every endpoint of `table`, each behind the role its entry names: a request without
/// a token of that role gets 401 or 403 before its handler (or its body) is looked at, and
/// a caller past its rate 429.
pub fn mount(cfg: &mut web::ServiceConfig, table: &[Endpoint]) {
    for endpoint in table {
        let role = endpoint.role.filter(|_| !endpoint.own_auth);
        let method = match endpoint.method {
            "post" => actix_web::http::Method::POST,
            "delete" => actix_web::http::Method::DELETE,
            _ => actix_web::http::Method::GET,
        };
        cfg.service(
            web::resource(endpoint.path)
                .guard(actix_web::guard::Method(method))
                .wrap_fn(move |mut req, service| {
                    let refuse = |req: actix_web::dev::ServiceRequest, error: ApiError| {
                        Either::Right(ready(Ok(req.into_response(error.error_response()))))
                    };
                    // Token and role, then the token's rate and its requests in flight.
                    let mut slot = None;
                    if let Some(role) = role {
                        let caller = match authenticate(req.request())
                            .and_then(|c| c.require(role).map(|()| c))
                        {
                            Ok(caller) => caller,
                            Err(error) => return refuse(req, error),
                        };
                        if let Some(answer) = throttle(req.request(), &caller.name) {
                            return Either::Right(ready(Ok(req.into_response(answer))));
                        }
                        match admit(req.request(), &caller.name) {
                            Ok(held) => slot = held,
                            Err(answer) => {
                                return Either::Right(ready(Ok(req.into_response(*answer))));
                            }
                        }
                    }
                    if req.method() != actix_web::http::Method::GET {
                        bound_body(&mut req);
                    }
                    let call = service.call(req);
                    Either::Left(async move {
                        let answer = call.await;
                        drop(slot);
                        answer
                    })
                })
                .route((endpoint.route)()),
        );
    }
}
