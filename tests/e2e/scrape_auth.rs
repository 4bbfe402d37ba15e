//! Scrapes that authenticate as Prometheus' scrape config does: a target over TLS from a
//! private CA (`ca_file`) that wants a bearer token (from a file) and a tenant header, and a
//! plain one that wants basic auth; both refuse a request without them.

use std::time::Duration;

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};

use crate::util::{Server, wait_for};

/// Serves `value` as `queue_depth` to requests whose headers hold every `(name, value)`
/// wanted, 401 to others; over TLS when `tls` names the PEM files. Answers the address.
fn target(wanted: Vec<(String, String)>, value: f64, tls: Option<(String, String)>) -> String {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        actix::System::new().block_on(async move {
            let wanted = web::Data::new(wanted);
            let server = HttpServer::new(move || {
                App::new().app_data(wanted.clone()).route(
                    "/metrics",
                    web::get().to(
                        move |request: HttpRequest, wanted: web::Data<Vec<(String, String)>>| async move {
                            let headers = request.headers();
                            let ok = wanted.iter().all(|(name, value)| {
                                headers.get(name.as_str()).and_then(|v| v.to_str().ok()) == Some(value)
                            });
                            if ok {
                                HttpResponse::Ok().body(format!("# TYPE queue_depth gauge\nqueue_depth {value}\n"))
                            } else {
                                HttpResponse::Unauthorized().finish()
                            }
                        },
                    ),
                )
            })
            .workers(1);
            let server = match tls {
                Some((cert_file, key_file)) => {
                    let files = swarmpilot::policy::TlsFiles { cert_file, key_file };
                    let config = swarmpilot::api::tls::server_config(&files).unwrap();
                    server.bind_rustls_0_23("127.0.0.1:0", config).unwrap()
                }
                None => server.bind("127.0.0.1:0").unwrap(),
            };
            tx.send(server.addrs()[0]).unwrap();
            server.run().await.unwrap();
        });
    });
    rx.recv().unwrap().to_string()
}

#[tokio::test]
async fn scrapes_carry_bearer_tokens_basic_auth_headers_and_trust_a_private_ca() {
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name).display().to_string();
    let made = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into()]).unwrap();
    std::fs::write(path("cert.pem"), made.cert.pem()).unwrap();
    std::fs::write(path("key.pem"), made.signing_key.serialize_pem()).unwrap();
    std::fs::write(path("token"), "sekrit\n").unwrap();
    std::fs::write(path("password"), "hunter2\n").unwrap();
    let secure = target(
        vec![
            ("authorization".into(), "Bearer sekrit".into()),
            ("x-scope-orgid".into(), "team-a".into()),
        ],
        7.0,
        Some((path("cert.pem"), path("key.pem"))),
    );
    // "scraper:hunter2" in base64.
    let basic = target(
        vec![("authorization".into(), "Basic c2NyYXBlcjpodW50ZXIy".into())],
        9.0,
        None,
    );
    let bare = target(
        vec![("authorization".into(), "Bearer sekrit".into())],
        1.0,
        None,
    );
    let mapping = r#"metrics = [{ from = "queue_depth", to = "queue_depth" }]"#;
    let policy = format!(
        r#"
[global]
sampling_interval_secs = 1

[pools.external]
min_agents = 0
driver = {{ type = "none" }}

[[ingest.scrape]]
url = "https://{secure}/metrics"
agent = "secure-1"
{mapping}
auth = {{ bearer_token_file = {token:?}, ca_file = {ca:?}, headers = {{ "X-Scope-OrgID" = "team-a" }} }}

[[ingest.scrape]]
url = "http://{basic}/metrics"
agent = "basic-1"
{mapping}
auth = {{ basic_auth = {{ username = "scraper", password_file = {password:?} }} }}

[[ingest.scrape]]
url = "http://{bare}/metrics"
agent = "bare-1"
{mapping}
"#,
        token = path("token"),
        ca = path("cert.pem"),
        password = path("password"),
    );
    let server = Server::start(&policy);
    wait_for(
        "both authenticated targets read",
        Duration::from_secs(20),
        || async {
            let agents = server.agents().await;
            let depth = |id: &str| {
                agents
                    .iter()
                    .find(|a| a["id"] == id)
                    .and_then(|a| a["metrics"]["queue_depth"].as_f64())
            };
            (depth("secure-1") == Some(7.0) && depth("basic-1") == Some(9.0)).then_some(())
        },
    )
    .await;
    // The target scraped without credentials is refused, and the refusal is counted.
    wait_for(
        "the bare target's refusal counted",
        Duration::from_secs(20),
        || async {
            let page = server.metrics_page().await?;
            page.lines()
                .any(|l| {
                    l.starts_with("swarmpilot_scrape_failures_total{agent=\"bare-1\"")
                        && !l.ends_with(" 0")
                })
                .then_some(())
        },
    )
    .await;
}
