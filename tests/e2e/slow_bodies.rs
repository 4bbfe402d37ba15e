//! Slow bodies: a token holder who opens connections and never sends the bodies they
//! announce holds at most the policy's cap of requests in flight; every other request of
//! theirs is refused at once, other tokens and `/healthz` are not held back, each held
//! request gets 408 at the body deadline, and the server's descriptors come back.

use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::util::{Server, client, viewer_token, wait_for};

/// Held connections opened by the one token: far past its cap of four.
const HELD: usize = 300;

/// Opens a connection that announces a JSON body of 100 bytes and sends none of it.
async fn hold(addr: &str, token: &str) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let head = format!(
        "POST /api/v1/actions HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.expect("send head");
    stream
}

/// The status line's code of the first answer on `stream`, read within `within`.
async fn status_of(stream: &mut TcpStream, within: Duration) -> u16 {
    let mut answer = Vec::new();
    let mut buffer = [0u8; 4096];
    let read = async {
        while !answer.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = stream.read(&mut buffer).await.expect("read");
            assert!(n > 0, "closed without an answer");
            answer.extend_from_slice(&buffer[..n]);
        }
    };
    tokio::time::timeout(within, read)
        .await
        .expect("an answer in time");
    let text = String::from_utf8_lossy(&answer);
    text.split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("a status line")
}

/// The server's descriptors of connections accepted on its API port (its listener, its
/// store's connections and its own clients are not counted: with PostgreSQL those grow on
/// their own while the test runs).
fn api_connections(server: &Server) -> usize {
    let pid = server.pid().unwrap();
    let port: u16 = server.url.rsplit(':').next().unwrap().parse().unwrap();
    let mut accepted = std::collections::HashSet::new();
    for table in ["tcp", "tcp6"] {
        let text = std::fs::read_to_string(format!("/proc/{pid}/net/{table}")).unwrap_or_default();
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let Some(local) = fields.get(1) else { continue };
            let local_port = local.rsplit(':').next().map(|p| u16::from_str_radix(p, 16));
            // State 0A is LISTEN; the inode is the tenth field.
            if local_port == Some(Ok(port)) && fields.get(3) != Some(&"0A") {
                accepted.insert(format!("socket:[{}]", fields[9]));
            }
        }
    }
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| {
            d.filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
                .filter(|target| accepted.contains(target.to_string_lossy().as_ref()))
                .count()
        })
        .unwrap_or(0)
}

#[tokio::test]
async fn a_token_holding_bodies_back_holds_only_its_cap_and_each_gets_408_in_time() {
    let dir = tempfile::tempdir().unwrap();
    let viewer = viewer_token(dir.path(), "viewer-secret-of-the-slow-body-test");
    let server = Server::start(&format!(
        "[global]\nmax_requests_in_flight_per_token = 4\n{viewer}\
         [ingest]\nbody_timeout_secs = 5\n\
         [pools.external]\nmin_agents = 0\ndriver = {{ type = \"none\" }}\n"
    ));
    let addr = server.url.trim_start_matches("http://").to_string();
    let before = api_connections(&server);

    let started = Instant::now();
    let mut held = Vec::new();
    for _ in 0..HELD {
        held.push(hold(&addr, &server.token).await);
    }
    // The count sees the connections held open (at least the cap's four).
    let open = api_connections(&server);
    assert!(
        open >= before + 4,
        "{open} connections open, {before} before"
    );
    // Past the cap: refused at once, naming the setting (the cap's four are still held).
    let refused = client()
        .get(format!("{}/api/v1/pools", server.url))
        .bearer_auth(&server.token)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 429);
    assert_eq!(refused.headers()["retry-after"], "1");
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "too_many_in_flight", "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("global.max_requests_in_flight_per_token"),
        "{message}"
    );
    // Another token and the health check are not held back.
    let (status, _) = server
        .get_as("/api/v1/pools", Some("viewer-secret-of-the-slow-body-test"))
        .await;
    assert_eq!(status, 200);
    let health_started = Instant::now();
    let health = client()
        .get(format!("{}/healthz", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    assert!(
        health_started.elapsed() < Duration::from_secs(1),
        "/healthz took {:?} with {HELD} bodies held back",
        health_started.elapsed()
    );

    // Every held request is answered: 429 at once beyond the cap, 408 at the deadline. Only
    // the cap's four hold a slot at a time (a slot freed by a 408 while connections were
    // still being opened goes to one of the later ones, on a slow machine).
    let opened_in = started.elapsed();
    let mut statuses = std::collections::BTreeMap::new();
    for stream in &mut held {
        let status = status_of(stream, Duration::from_secs(15)).await;
        *statuses.entry(status).or_insert(0) += 1;
    }
    let timed_out = statuses.get(&408).copied().unwrap_or(0);
    let most = 4 * (1 + opened_in.as_secs() as usize / 5);
    assert!(
        (4..=most).contains(&timed_out),
        "{statuses:?} (opened in {opened_in:?})"
    );
    assert_eq!(
        statuses.get(&429),
        Some(&(HELD - timed_out)),
        "{statuses:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "the held requests took {:?} to be answered",
        started.elapsed()
    );
    drop(held);

    // Its slots are back, and so are the server's descriptors.
    let (status, _) = server.get("/api/v1/pools").await;
    assert_eq!(status, 200);
    // The test's own clients may keep a few connections alive.
    wait_for(
        "the held connections' descriptors to close",
        Duration::from_secs(20),
        || {
            let open = api_connections(&server);
            async move { (open <= before + 8).then_some(()) }
        },
    )
    .await;
}
