//! Delivering one JSON message over HTTP: a timeout per attempt, retries with exponential
//! backoff, and errors that never name the URL (it is a secret).

use std::time::Duration;

/// How hard a delivery tries.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Delivery {
    /// Attempts in all.
    pub attempts: u32,
    /// Wait before the second attempt; doubles each time.
    pub backoff: Duration,
    /// Time each attempt may take.
    pub timeout: Duration,
}

impl Default for Delivery {
    fn default() -> Self {
        Delivery {
            attempts: 5,
            backoff: Duration::from_millis(500),
            timeout: super::ATTEMPT_TIMEOUT,
        }
    }
}

/// POSTs `body` to `url` until a 2xx answer or the attempts run out. Returns the failed
/// attempts before success, or them and the last error.
pub async fn deliver(
    client: &reqwest::Client,
    url: &str,
    body: &serde_json::Value,
    delivery: &Delivery,
) -> Result<u64, (u64, String)> {
    let mut wait = delivery.backoff;
    let mut failures = 0u64;
    loop {
        let attempt = client
            .post(url)
            .timeout(delivery.timeout)
            .json(body)
            .send()
            .await;
        let error = match attempt {
            Ok(response) if response.status().is_success() => return Ok(failures),
            Ok(response) => format!("receiver answered {}", response.status()),
            // Without the URL: reqwest's own message would carry it.
            Err(error) if error.is_timeout() => {
                format!("no answer within {} ms", delivery.timeout.as_millis())
            }
            Err(error) if error.is_connect() => "cannot connect to the receiver".to_string(),
            Err(_) => "the request failed".to_string(),
        };
        failures += 1;
        if failures >= u64::from(delivery.attempts) {
            return Err((failures, format!("{error} ({failures} attempts)")));
        }
        tokio::time::sleep(wait).await;
        wait *= 2;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use actix_web::{App, HttpResponse, HttpServer, web};

    use super::*;

    /// A receiver that fails the first `fail` requests, then accepts; returns its URL.
    fn receiver(fail: usize, seen: Arc<AtomicUsize>) -> String {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let server = HttpServer::new(move || {
            let seen = seen.clone();
            App::new().route(
                "/hook",
                web::post().to(move |body: web::Json<serde_json::Value>| {
                    let seen = seen.clone();
                    async move {
                        let n = seen.fetch_add(1, Ordering::SeqCst);
                        assert_eq!(body["title"], "hello");
                        if n < fail {
                            HttpResponse::ServiceUnavailable().finish()
                        } else {
                            HttpResponse::Ok().finish()
                        }
                    }
                }),
            )
        })
        .workers(1)
        .listen(listener)
        .unwrap()
        .run();
        actix_web::rt::spawn(server);
        url
    }

    fn quick() -> Delivery {
        Delivery {
            attempts: 4,
            backoff: Duration::from_millis(10),
            timeout: Duration::from_secs(2),
        }
    }

    #[actix_web::test]
    async fn a_receiver_that_fails_three_times_still_gets_the_message() {
        let seen = Arc::new(AtomicUsize::new(0));
        let url = receiver(3, seen.clone());
        let body = serde_json::json!({"title": "hello"});
        let client = reqwest::Client::new();
        assert_eq!(deliver(&client, &url, &body, &quick()).await, Ok(3));
        assert_eq!(seen.load(Ordering::SeqCst), 4);
    }

    #[actix_web::test]
    async fn an_unreachable_receiver_fails_without_naming_its_url() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/secret-path", listener.local_addr().unwrap());
        drop(listener);
        let body = serde_json::json!({"title": "hello"});
        let (failures, error) = deliver(&reqwest::Client::new(), &url, &body, &quick())
            .await
            .unwrap_err();
        assert_eq!(failures, 4);
        assert!(!error.contains("secret-path"), "{error}");
        assert!(error.contains("cannot connect"), "{error}");
    }
}
