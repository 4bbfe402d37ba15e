//! A scripted HTTP server for the remote drivers' tests: a real actix-web server on a free
//! loopback port that records every request and answers through a closure.

use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::dev::ServerHandle;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// `GET`, `PATCH`, ...
    pub method: String,
    /// The path, without the query.
    pub path: String,
    /// The `Content-Type` header.
    pub content_type: Option<String>,
    /// The `Authorization` header.
    pub authorization: Option<String>,
    /// The body as text.
    pub body: String,
}

impl Recorded {
    /// The body parsed as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap()
    }
}

/// What the server answers.
pub struct Reply {
    /// The HTTP status.
    pub status: u16,
    /// The body, sent as JSON.
    pub body: serde_json::Value,
    /// How long to wait before answering.
    pub delay: Duration,
}

impl Reply {
    /// `status` with a JSON body, at once.
    pub fn json(status: u16, body: serde_json::Value) -> Reply {
        Reply {
            status,
            body,
            delay: Duration::ZERO,
        }
    }
}

type Respond = dyn Fn(&Recorded, usize) -> Reply + Send + Sync;

/// The running server.
pub struct FakeServer {
    /// Its base URL, `http://127.0.0.1:PORT`.
    pub url: String,
    requests: Arc<Mutex<Vec<Recorded>>>,
    handle: ServerHandle,
}

impl FakeServer {
    /// Starts a server whose answers come from `respond(request, index of the request)`.
    pub fn start(respond: impl Fn(&Recorded, usize) -> Reply + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let requests: Arc<Mutex<Vec<Recorded>>> = Arc::default();
        let respond: Arc<Respond> = Arc::new(respond);
        let state = web::Data::new((requests.clone(), respond));
        let server = HttpServer::new(move || {
            App::new()
                .app_data(state.clone())
                .default_service(web::to(answer))
        })
        .workers(1)
        .disable_signals()
        .shutdown_timeout(0)
        .listen(listener)
        .unwrap()
        .run();
        let handle = server.handle();
        tokio::spawn(server);
        FakeServer {
            url,
            requests,
            handle,
        }
    }

    /// Every request so far, oldest first.
    pub fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().unwrap().clone()
    }

    /// Stops the server.
    pub async fn stop(self) {
        self.handle.stop(false).await;
    }
}

type State = web::Data<(Arc<Mutex<Vec<Recorded>>>, Arc<Respond>)>;

async fn answer(request: HttpRequest, body: web::Bytes, state: State) -> HttpResponse {
    let header = |name: &str| {
        request
            .headers()
            .get(name)
            .and_then(|value| value.to_str().ok())
            .map(ToString::to_string)
    };
    let recorded = Recorded {
        method: request.method().to_string(),
        path: request.path().to_string(),
        content_type: header("content-type"),
        authorization: header("authorization"),
        body: String::from_utf8_lossy(&body).into_owned(),
    };
    let (requests, respond) = (&state.0, &state.1);
    let index = {
        let mut requests = requests.lock().unwrap();
        requests.push(recorded.clone());
        requests.len() - 1
    };
    let reply = respond(&recorded, index);
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    let status = actix_web::http::StatusCode::from_u16(reply.status).unwrap();
    HttpResponse::build(status).json(reply.body)
}
