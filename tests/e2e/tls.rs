//! TLS: the API served over rustls from PEM files, a client that trusts the certificate
//! reads it, and a listen address beyond loopback without TLS is refused unless the policy
//! says so in so many words.

use std::process::{Command, Stdio};
use std::time::Duration;

use crate::util::{EXE, Server};

/// A policy whose API serves TLS with a certificate for 127.0.0.1 written to `dir`; answers
/// the policy and the certificate's PEM.
fn tls_policy(dir: &std::path::Path) -> (String, String) {
    let made =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()]).unwrap();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, made.cert.pem()).unwrap();
    std::fs::write(&key, made.signing_key.serialize_pem()).unwrap();
    let policy = format!(
        "[global.tls]\ncert_file = {:?}\nkey_file = {:?}\n\
         [pools.external]\ndriver = {{ type = \"none\" }}\nmin_agents = 0\n",
        cert.display().to_string(),
        key.display().to_string()
    );
    (policy, made.cert.pem())
}

#[tokio::test]
async fn the_api_serves_tls_to_a_client_that_trusts_its_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let (policy, pem) = tls_policy(dir.path());
    let server = Server::start(&policy);
    assert!(
        server.url.starts_with("https://127.0.0.1:"),
        "{}",
        server.url
    );
    let trusting = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(pem.as_bytes()).unwrap()])
        .build()
        .unwrap();
    let response = trusting
        .get(format!("{}/api/v1/pools", server.url))
        .bearer_auth(&server.token)
        .send()
        .await
        .expect("an answer over TLS");
    assert_eq!(response.status(), 200);
    // A client that does not trust it gets no answer; plain HTTP gets none either.
    let untrusting = reqwest::Client::new();
    assert!(
        untrusting
            .get(format!("{}/healthz", server.url))
            .send()
            .await
            .is_err()
    );
    let plain = server.url.replacen("https://", "http://", 1);
    let answer = reqwest::Client::new()
        .get(format!("{plain}/healthz"))
        .timeout(Duration::from_secs(5))
        .send()
        .await;
    assert!(
        answer.map_or(true, |r| !r.status().is_success()),
        "plain HTTP answered on the TLS port"
    );
}

/// Runs `serve` with `policy` on `listen`: `None` once it listens (it is then stopped),
/// else its exit code; and its stderr.
fn serve_once(policy: &str, listen: &str) -> (Option<i32>, String) {
    use std::io::{BufRead, Read};
    let dir = tempfile::tempdir().unwrap();
    let policies = dir.path().join("policies");
    std::fs::create_dir_all(&policies).unwrap();
    std::fs::write(policies.join("p.toml"), policy).unwrap();
    let mut child = Command::new(EXE)
        .args(["serve", "--listen", listen, "--policies"])
        .arg(&policies)
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .env("OPS_TOKEN", "a-long-enough-secret-for-the-test")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // It either says where it listens or ends (and its stdout with it).
    let stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let listened = stdout
        .lines()
        .map_while(Result::ok)
        .any(|line| line.starts_with("swarmpilot listening on "));
    if listened {
        child.kill().unwrap();
    }
    let status = child.wait().unwrap();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    (if listened { None } else { status.code() }, stderr)
}

#[test]
fn beyond_loopback_without_tls_is_refused_unless_the_policy_says_so() {
    let tokens =
        "[[global.tokens]]\nname = \"ops\"\nrole = \"viewer\"\ntoken_env = \"OPS_TOKEN\"\n";
    let (code, stderr) = serve_once(tokens, "0.0.0.0:0");
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("global.tls"), "{stderr}");
    assert!(
        stderr.contains("global.plaintext_beyond_loopback"),
        "{stderr}"
    );
    // (That it listens when the policy says so is checked without binding beyond loopback:
    // `controller::tests`.) On loopback, plaintext is the default.
    let (code, stderr) = serve_once(tokens, "127.0.0.1:0");
    assert_eq!(code, None, "exited: {stderr}");
}
