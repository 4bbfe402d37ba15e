//! A scripted JSON server for the end-to-end tests: a real actix-web server on a free
//! loopback port, on a thread and runtime of its own (starting a controller blocks the
//! test's thread), answering every request through a closure.

use std::sync::Arc;

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use serde_json::Value;

/// How the server answers a request: its method, path and JSON body (null when none).
pub type Respond = dyn Fn(&str, &str, Value) -> (u16, Value) + Send + Sync;

/// Starts a server answering through `respond`; answers its base URL, `http://127.0.0.1:PORT`.
pub fn serve(
    respond: impl Fn(&str, &str, Value) -> (u16, Value) + Send + Sync + 'static,
) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let respond: Arc<Respond> = Arc::new(respond);
    let data = web::Data::new(respond);
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            HttpServer::new(move || {
                App::new()
                    .app_data(data.clone())
                    .default_service(web::to(answer))
            })
            .workers(1)
            .disable_signals()
            .listen(listener)
            .unwrap()
            .run()
            .await
        })
    });
    url
}

async fn answer(
    request: HttpRequest,
    body: web::Bytes,
    respond: web::Data<Arc<Respond>>,
) -> HttpResponse {
    let sent = serde_json::from_slice::<Value>(&body).unwrap_or(Value::Null);
    let (status, reply) = respond(request.method().as_str(), request.path(), sent);
    HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap()).json(reply)
}
