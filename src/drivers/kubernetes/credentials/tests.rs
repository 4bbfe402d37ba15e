//! Kubeconfig and in-cluster credentials read from temporary files.

use std::path::Path;

use super::*;

/// A self-signed CA certificate (no key is kept anywhere), for the PEM paths.
const CA_PEM: &str = "-----BEGIN CERTIFICATE-----
MIIBkDCCATegAwIBAgIUZORshYiIyvdz1n6Ebrp7A8UhUtcwCgYIKoZIzj0EAwIw
HTEbMBkGA1UEAwwSc3dhcm1waWxvdC10ZXN0LWNhMCAXDTI2MTEyMTIxMzcxMVoY
DzIxMjYxMDI4MjEzNzExWjAdMRswGQYDVQQDDBJzd2FybXBpbG90LXRlc3QtY2Ew
WTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAASdMMwx4tvXKtOeG2iIbTZdLn86B8QI
FVIhUjfIxGztmWt0qIRFaykbePweLJANwPdCgd9KQTF2w8jjy386LbIKo1MwUTAd
BgNVHQ4EFgQUfR8IfvxMAAJ1wVWoZHTZ+5PgjmMwHwYDVR0jBBgwFoAUfR8IfvxM
AAJ1wVWoZHTZ+5PgjmMwDwYDVR0TAQH/BAUwAwEB/zAKBggqhkjOPQQDAgNHADBE
AiAk1Udnviy6r0EvBlO9FhXYBdVPlsa3JIdmxZR1Vy2OJgIgePxgKISfkJgP1nC5
uurpsUPZDyk4k334xnBC1IjwtaY=
-----END CERTIFICATE-----
";

fn kubeconfig(dir: &Path) -> PathBuf {
    let ca_data = base64::engine::general_purpose::STANDARD.encode(CA_PEM);
    let text = format!(
        r#"apiVersion: v1
kind: Config
preferences: {{}}
current-context: prod-admin
clusters:
- name: staging
  cluster:
    server: https://staging.example:6443
    insecure-skip-tls-verify: true
- name: prod
  cluster:
    server: https://prod.example:6443
    certificate-authority-data: {ca_data}
    extensions:
    - name: client.authentication.k8s.io/exec
      extension: {{audience: prod}}
contexts:
- name: staging-dev
  context:
    cluster: staging
    user: dev
- name: prod-admin
  context:
    cluster: prod
    user: admin
    namespace: agents
- name: cloud
  context:
    cluster: prod
    user: cloud-sso
users:
- name: dev
  user:
    tokenFile: tokens/dev
- name: admin
  user:
    token: "eyJhbGciOiJSUzI1NiJ9.admin"
- name: cloud-sso
  user:
    exec:
      apiVersion: client.authentication.k8s.io/v1beta1
      command: cloud-auth
      args: ["token"]
"#
    );
    let path = dir.join("config");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn the_current_context_gives_server_token_namespace_and_ca() {
    let dir = tempfile::tempdir().unwrap();
    let path = kubeconfig(dir.path());
    let credentials = Credentials::from_kubeconfig(&path, None).unwrap();
    assert_eq!(credentials.server, "https://prod.example:6443");
    assert_eq!(credentials.namespace.as_deref(), Some("agents"));
    assert_eq!(
        credentials.auth,
        Auth::Token(Secret::new("eyJhbGciOiJSUzI1NiJ9.admin"))
    );
    assert_eq!(credentials.ca_pem.as_deref(), Some(CA_PEM.as_bytes()));
    assert!(!credentials.insecure_skip_tls_verify);
    assert!(
        credentials.origin.contains("\"prod-admin\""),
        "{}",
        credentials.origin
    );
    assert!(
        !format!("{credentials:?}").contains("eyJhbGci"),
        "the token stays out of logs"
    );
    credentials.client(Duration::from_secs(1)).unwrap();
}

#[test]
fn the_policy_context_wins_and_relative_paths_follow_the_kubeconfig() {
    let dir = tempfile::tempdir().unwrap();
    let path = kubeconfig(dir.path());
    let credentials = Credentials::from_kubeconfig(&path, Some("staging-dev")).unwrap();
    assert_eq!(credentials.server, "https://staging.example:6443");
    assert_eq!(credentials.namespace, None);
    assert!(credentials.insecure_skip_tls_verify);
    assert_eq!(
        credentials.auth,
        Auth::TokenFile(dir.path().join("tokens/dev"))
    );
}

#[test]
fn unusable_kubeconfigs_say_why() {
    let dir = tempfile::tempdir().unwrap();
    let path = kubeconfig(dir.path());
    let check = |context: Option<&str>, expected: &str| {
        let error = Credentials::from_kubeconfig(&path, context)
            .unwrap_err()
            .to_string();
        assert!(error.contains(expected), "{error}");
    };
    // The exec plugin is taken, to run at the first request.
    let cloud = Credentials::from_kubeconfig(&path, Some("cloud")).unwrap();
    let Auth::Exec(plugin) = &cloud.auth else {
        panic!("{:?}", cloud.auth);
    };
    assert_eq!(plugin.command, std::path::Path::new("cloud-auth"));
    assert_eq!(plugin.args, ["token"]);
    assert_eq!(plugin.api_version, "client.authentication.k8s.io/v1beta1");
    check(Some("nope"), "no context named \"nope\"");

    let broken = dir.path().join("broken");
    std::fs::write(&broken, "clusters: [name: {").unwrap();
    let error = Credentials::from_kubeconfig(&broken, None).unwrap_err();
    assert!(matches!(error, CredentialsError::Yaml { .. }), "{error}");
    std::fs::write(&broken, "apiVersion: v1\nkind: Config\n").unwrap();
    let error = Credentials::from_kubeconfig(&broken, None)
        .unwrap_err()
        .to_string();
    assert!(error.contains("no current-context"), "{error}");
}

fn service_account(dir: &Path) {
    std::fs::write(dir.join("token"), "sa-token\n").unwrap();
    std::fs::write(dir.join("ca.crt"), CA_PEM).unwrap();
    std::fs::write(dir.join("namespace"), "agents\n").unwrap();
}

#[test]
fn in_cluster_reads_the_service_account_files() {
    let dir = tempfile::tempdir().unwrap();
    service_account(dir.path());
    let credentials = Credentials::in_cluster("10.96.0.1", "443", dir.path()).unwrap();
    assert_eq!(credentials.server, "https://10.96.0.1:443");
    assert_eq!(credentials.namespace.as_deref(), Some("agents"));
    assert_eq!(credentials.auth, Auth::TokenFile(dir.path().join("token")));
    assert_eq!(credentials.ca_pem.as_deref(), Some(CA_PEM.as_bytes()));
    credentials.client(Duration::from_secs(1)).unwrap();

    let ipv6 = Credentials::in_cluster("fd00::1", "443", dir.path()).unwrap();
    assert_eq!(ipv6.server, "https://[fd00::1]:443");

    let empty = tempfile::tempdir().unwrap();
    let error = Credentials::in_cluster("10.96.0.1", "443", empty.path()).unwrap_err();
    assert!(error.to_string().contains("token"), "{error}");
}

#[test]
fn sources_are_tried_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let path = kubeconfig(dir.path());
    let pod = tempfile::tempdir().unwrap();
    service_account(pod.path());
    let home = tempfile::tempdir().unwrap();
    let in_pod = Sources {
        home: Some(home.path().to_path_buf()),
        service: Some(("10.96.0.1".into(), "443".into())),
        service_account_dir: pod.path().to_path_buf(),
        ..Sources::default()
    };

    let from_pod = Credentials::resolve(&in_pod, None).unwrap();
    assert_eq!(from_pod.server, "https://10.96.0.1:443");

    let with_env = Sources {
        kubeconfig_env: Some(format!("/no/such/file:{}", path.display())),
        ..in_pod.clone()
    };
    let from_env = Credentials::resolve(&with_env, None).unwrap();
    assert_eq!(from_env.server, "https://prod.example:6443");

    let with_policy = Sources {
        kubeconfig: Some(path.clone()),
        context: Some("staging-dev".into()),
        ..in_pod.clone()
    };
    let overridden = Credentials::resolve(&with_policy, Some("http://127.0.0.1:8001")).unwrap();
    assert_eq!(overridden.server, "http://127.0.0.1:8001");
    assert_eq!(
        overridden.auth,
        Auth::TokenFile(dir.path().join("tokens/dev"))
    );

    let nothing = Sources {
        home: Some(home.path().to_path_buf()),
        ..Sources::default()
    };
    let error = Credentials::resolve(&nothing, None).unwrap_err();
    assert!(matches!(error, CredentialsError::NotFound), "{error}");
    let proxy = Credentials::resolve(&nothing, Some("http://127.0.0.1:8001")).unwrap();
    assert_eq!(
        (proxy.server.as_str(), &proxy.auth),
        ("http://127.0.0.1:8001", &Auth::Anonymous)
    );
}

#[test]
fn a_ca_that_is_not_pem_is_refused() {
    let credentials = Credentials {
        ca_pem: Some(b"not a certificate".to_vec()),
        ..Credentials::resolve(&Sources::default(), Some("https://k8s.example")).unwrap()
    };
    let error = credentials
        .client(Duration::from_secs(1))
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("holds no certificate") || error.contains("not PEM"),
        "{error}"
    );
}
