//! Policy loading and checking, table-driven: each bad input and the exact message it gets.

use std::path::Path;

use super::*;

/// Loads `text` as `p.toml` and expects exactly the `expected` error lines, in order.
fn check(text: &str, expected: &[&str]) {
    let error = load_str("p.toml", text).expect_err("the policy should be rejected");
    let got: Vec<String> = error.errors.iter().map(ToString::to_string).collect();
    assert_eq!(got, expected, "for policy:\n{text}");
}

/// Loads `text` and expects it to load with exactly the `expected` warning lines.
fn check_warnings(text: &str, expected: &[&str]) {
    let loaded = load_str("p.toml", text).expect("the policy should load");
    let got: Vec<String> = loaded.warnings.iter().map(ToString::to_string).collect();
    assert_eq!(got, expected, "for policy:\n{text}");
}

#[test]
fn default_policy_loads_without_warnings() {
    let loaded = load_str("default.toml", DEFAULT_POLICY).unwrap();
    let worker = loaded.policy.pool("worker").expect("pool worker");
    assert_eq!((worker.min_agents, worker.max_agents), (2, 8));
    assert_eq!(loaded.policy.global.sampling_interval_secs, 2);
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    let embedded = load_embedded().unwrap();
    assert!(embedded.warnings.is_empty(), "{:?}", embedded.warnings);
    let genai = &embedded.policy.genai;
    assert_eq!(
        genai
            .price(Some("openai"), "gpt-4o-mini-2024-07-18")
            .unwrap()
            .input_per_million,
        0.15
    );
    assert_eq!(
        genai
            .price(Some("openai"), "gpt-4o-2024-08-06")
            .unwrap()
            .input_per_million,
        2.5
    );
}

#[test]
fn syntax_errors_point_at_the_spot() {
    check(
        "[global\n",
        &["p.toml:1:8: error: unclosed table, expected `]`"],
    );
    check(
        "a = \n",
        &["p.toml:1:5: error: string values must be quoted, expected literal string"],
    );
}

#[test]
fn unknown_fields_suggest_the_nearest_name() {
    check(
        "[pools.w]\nmin_agentz = 1\n",
        &[
            "p.toml:2:1: error: pools.w.min_agentz: unknown field `min_agentz`; did you mean `min_agents`?",
        ],
    );
    check(
        "[globle]\n",
        &["p.toml:1:2: error: globle: unknown field `globle`; did you mean `global`?"],
    );
    check(
        "[pools.w.driver]\ntype = \"proces\"\n",
        &[
            "p.toml:2:8: error: pools.w.driver.type: unknown value `proces`, expected one of `process`, `http`, `kubernetes`, `none`; did you mean `process`?",
        ],
    );
}

#[test]
fn wrong_types_name_what_was_expected() {
    check(
        "[global]\nsampling_interval_secs = \"two\"\n",
        &[
            "p.toml:2:26: error: global.sampling_interval_secs: expected an integer, found string \"two\"",
        ],
    );
    check(
        "[[alerts]]\nname = \"x\"\nmetric = \"m\"\nabove = true\n",
        &["p.toml:4:9: error: alerts[0].above: expected a number, found boolean true"],
    );
    check(
        "[[alerts]]\nname = \"x\"\nabove = 1\n",
        &["p.toml:1:1: error: alerts[0]: missing field `metric`"],
    );
}

#[test]
fn every_structural_problem_is_reported_at_once() {
    let text =
        "[global]\nsampling_interval_secs = -1\nring_buffer_size = 0\n[pools.w]\nmax_agent = 3\n";
    let error = load_str("p.toml", text).unwrap_err();
    assert_eq!(error.errors.len(), 3, "{error}");
}

#[test]
fn structural_and_cross_field_problems_are_reported_together_in_order() {
    check(
        "[global]\nsampling_interval_secs = 30\nheartbeat_timeout_secs = 60\n[pools.w]\nmin_agentz = 1\n\
         [profiles.po.thresholds.cpu_percent]\nwarning = 90\ncritical = 80\n",
        &[
            "p.toml:2:26: error: global.sampling_interval_secs: 30 is outside 1-10 seconds",
            "p.toml:5:1: error: pools.w.min_agentz: unknown field `min_agentz`; did you mean `min_agents`?",
            "p.toml:7:11: error: profiles.po.thresholds.cpu_percent.warning: warning threshold 90 is not below the critical threshold 80",
        ],
    );
}

#[test]
fn out_of_range_values_are_errors() {
    check(
        "[global]\nsampling_interval_secs = 30\nheartbeat_timeout_secs = 60\n",
        &["p.toml:2:26: error: global.sampling_interval_secs: 30 is outside 1-10 seconds"],
    );
    check(
        "[pools.w]\nmin_agents = 5\nmax_agents = 2\n",
        &["p.toml:2:14: error: pools.w.min_agents: 5 is above max_agents 2"],
    );
    check(
        "[profiles.p.thresholds.cpu_percent]\nwarning = 90\ncritical = 80\n",
        &[
            "p.toml:2:11: error: profiles.p.thresholds.cpu_percent.warning: warning threshold 90 is not below the critical threshold 80",
        ],
    );
    check(
        "[pools.w]\ntolerance = 1.5\n",
        &["p.toml:2:13: error: pools.w.tolerance: 1.5 is above the maximum 0.99"],
    );
}

#[test]
fn references_to_missing_things_are_errors() {
    check(
        "[pools.web]\n[[alerts]]\nname = \"x\"\nmetric = \"m\"\nabove = 1\npool = \"wbe\"\n",
        &[
            "p.toml:6:8: error: alerts[0].pool: no pool named \"wbe\" (defined: web); did you mean `web`?",
        ],
    );
    check(
        "[pools.web]\nprofile = \"nope\"\n",
        &["p.toml:2:11: error: pools.web.profile: no profile named \"nope\" is defined"],
    );
    check(
        "[channels.ops]\ntype = \"console\"\n[[routes]]\nchannels = [\"opz\"]\n",
        &[
            "p.toml:4:13: error: routes[0].channels[0]: no channel named \"opz\" (defined: ops); did you mean `ops`?",
        ],
    );
    check(
        "[channels.hook]\ntype = \"webhook\"\nurl_env = \"SWARMPILOT_TEST_SURELY_UNSET\"\n",
        &[
            "p.toml:3:11: error: channels.hook.url_env: environment variable SWARMPILOT_TEST_SURELY_UNSET is not set",
        ],
    );
    check(
        "[[global.tokens]]\nname = \"alice\"\nrole = \"approver\"\ntoken_file = \"/nonexistent/alice\"\n",
        &[
            "p.toml:4:14: error: global.tokens[0].token_file: secret file /nonexistent/alice does not exist",
        ],
    );
}

#[test]
fn remote_drivers_are_checked() {
    check(
        "[pools.w.driver]\ntype = \"http\"\nurl = \"orchestrator:80\"\ntimeout_ms = 0\ntoken_env = \"SWARMPILOT_TEST_SURELY_UNSET\"\n",
        &[
            "p.toml:3:7: error: pools.w.driver.url: \"orchestrator:80\" is not an http:// or https:// URL",
            "p.toml:4:14: error: pools.w.driver.timeout_ms: 0 is below the minimum 1",
            "p.toml:5:13: error: pools.w.driver.token_env: environment variable SWARMPILOT_TEST_SURELY_UNSET is not set",
        ],
    );
    check(
        "[pools.w.driver]\ntype = \"kubernetes\"\nkind = \"deploy\"\n",
        &[
            "p.toml:1:1: error: pools.w.driver: missing field `name`",
            "p.toml:3:8: error: pools.w.driver.kind: unknown value `deploy`, expected one of `deployment`, `statefulset`",
        ],
    );
    check(
        "[pools.w.driver]\ntype = \"kubernetes\"\nname = \"Web_1\"\nnamespace = \"a.b\"\napi_server = \"localhost:8001\"\n",
        &[
            "p.toml:3:8: error: pools.w.driver.name: \"Web_1\" is not a Kubernetes object name (lowercase letters, digits, `-` and `.`)",
            "p.toml:4:13: error: pools.w.driver.namespace: \"a.b\" is not a namespace name (lowercase letters, digits and `-`, at most 63)",
            "p.toml:5:14: error: pools.w.driver.api_server: \"localhost:8001\" is not an http:// or https:// URL",
        ],
    );
    check_warnings(
        "[pools.w.driver]\ntype = \"kubernetes\"\nname = \"web\"\nkubeconfig = \"/nonexistent/kubeconfig\"\n",
        &[
            "p.toml:4:14: warning: pools.w.driver.kubeconfig: kubeconfig /nonexistent/kubeconfig does not exist here",
        ],
    );
    let loaded = load_str(
        "p.toml",
        "[pools.w.driver]\ntype = \"kubernetes\"\nname = \"web\"\nkind = \"statefulset\"\n",
    )
    .unwrap();
    assert_eq!(
        loaded.policy.pools["w"].driver,
        DriverConfig::Kubernetes {
            namespace: None,
            kind: WorkloadKind::StatefulSet,
            name: "web".into(),
            api_server: None,
            kubeconfig: None,
            context: None,
            timeout_ms: 5000,
        }
    );
}

#[test]
fn email_and_alertmanager_channels_are_checked() {
    check(
        "[channels.mail]\ntype = \"email\"\nsmtp_host = \"\"\nsmtp_port = 0\nfrom = \"bot\"\n\
         to = [\"ops@example.com\", \"ops at example\"]\nusername = \"bot\"\n",
        &[
            "p.toml:1:1: error: channels.mail: set `password_env` or `password_file`; secrets are never inline",
            "p.toml:3:13: error: channels.mail.smtp_host: is empty",
            "p.toml:4:13: error: channels.mail.smtp_port: 0 is not a port",
            "p.toml:5:8: error: channels.mail.from: \"bot\" is not an email address",
            "p.toml:6:26: error: channels.mail.to[1]: \"ops at example\" is not an email address",
        ],
    );
    check(
        "[channels.am]\ntype = \"alertmanager\"\nurl = \"alertmanager:9093\"\n\
         [channels.am2]\ntype = \"alertmanager\"\nurl = \"http://am:9093/api/v2/alerts\"\n",
        &[
            "p.toml:3:7: error: channels.am.url: \"alertmanager:9093\" is not an http:// or https:// URL",
            "p.toml:6:7: error: channels.am2.url: give Alertmanager's base URL: /api/v2/alerts is added to it",
        ],
    );
    check_warnings(
        "[channels.mail]\ntype = \"email\"\nsmtp_host = \"localhost\"\nfrom = \"Bot <bot@example.com>\"\n\
         to = [\"ops@example.com\"]\npassword_env = \"SMTP_PASSWORD\"\n\
         [channels.am]\ntype = \"alertmanager\"\nurl = \"http://127.0.0.1:9093/\"\n",
        &[
            "p.toml:6:16: warning: channels.mail.password_env: no `username` is set, so the password is never used",
        ],
    );
}

#[test]
fn conflicting_rules_are_errors() {
    let rule = |name: &str, above: u32| {
        format!("[[alerts]]\nname = \"{name}\"\nmetric = \"cpu_percent\"\nabove = {above}\n")
    };
    check(
        &format!("{}{}", rule("a", 70), rule("a", 70)),
        &["p.toml:6:8: error: alerts[1].name: \"a\" is already the name of alerts[0]"],
    );
    check(
        &format!("{}{}", rule("a", 70), rule("b", 80)),
        &[
            "p.toml:8:9: error: alerts[1].above: conflicts with alerts[0]: both are warning rules on cpu_percent for every pool, at 70 and 80",
        ],
    );
}

#[test]
fn warnings_are_separate_and_do_not_block_loading() {
    check_warnings(
        "[global]\nsampling_interval_secs = 5\nheartbeat_timeout_secs = 6\n",
        &[
            "p.toml:3:26: warning: global.heartbeat_timeout_secs: 6 s is less than two sampling intervals (10 s): healthy agents may be declared offline",
        ],
    );
    check_warnings(
        "[pools.e]\ndriver = { type = \"none\" }\nallow_agents = [\"x-*\"]\n",
        &[
            "p.toml:3:16: warning: pools.e.allow_agents: the pool has no driver: every agent may join it, so the list has no effect",
        ],
    );
    check_warnings(
        "[pools.w]\ntarget_cpu_percent = 95\n",
        &[
            "p.toml:2:22: warning: pools.w.target_cpu_percent: 95% leaves little headroom before agents saturate",
        ],
    );
}

#[test]
fn errors_in_a_later_file_point_into_that_file() {
    let sources = vec![
        (
            "10-pools.toml".to_string(),
            "[pools.a]\nmax_agents = 3\n[[alerts]]\nname = \"one\"\nmetric = \"m\"\nabove = 1\n"
                .to_string(),
        ),
        (
            "20-more.toml".to_string(),
            "\n[[alerts]]\nname = \"two\"\nmetric = \"n\"\nabove = 2\npool = \"b\"\n".to_string(),
        ),
    ];
    let error = load_sources(&sources).unwrap_err();
    let got: Vec<String> = error.errors.iter().map(ToString::to_string).collect();
    assert_eq!(
        got,
        ["20-more.toml:6:8: error: alerts[1].pool: no pool named \"b\" (defined: a)"]
    );
}

#[test]
fn directory_files_merge_in_name_order() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("10-pools.toml"),
        "[pools.a]\nmax_agents = 3\n[[alerts]]\nname = \"one\"\nmetric = \"m\"\nabove = 1\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("20-override.toml"),
        "[pools.a]\nmax_agents = 4\n[[alerts]]\nname = \"two\"\nmetric = \"n\"\nabove = 2\n",
    )
    .unwrap();
    let loaded = load_dir(dir.path()).unwrap();
    assert_eq!(loaded.policy.pool("a").unwrap().max_agents, 4);
    assert_eq!(loaded.policy.alerts.len(), 2);
    assert_eq!(loaded.files.len(), 2);
    assert_eq!(loaded.version, version_of(&loaded.policy));
}

/// The shipped examples: each loads, and reproduces its profile's thresholds.
#[test]
fn shipped_examples_load_with_their_profiles() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("policies/examples");
    // (directory, profile, cpu warning/critical, response ms warning/critical, errors %, max agents)
    let table = [
        (
            "product-owner",
            "product_owner",
            (60.0, 80.0),
            (3000.0, 8000.0),
            (3.0, 8.0),
            3,
        ),
        (
            "architect",
            "architect",
            (70.0, 85.0),
            (5000.0, 12000.0),
            (2.0, 5.0),
            2,
        ),
        (
            "test-engineer",
            "test_engineer",
            (80.0, 90.0),
            (10000.0, 20000.0),
            (5.0, 10.0),
            5,
        ),
    ];
    for (dir, name, cpu, response, errors, max) in table {
        let loaded = load_dir(&root.join(dir)).unwrap_or_else(|e| panic!("{dir}: {e}"));
        assert!(loaded.warnings.is_empty(), "{dir}: {:?}", loaded.warnings);
        let profile = &loaded.policy.profiles[name];
        let pair = |metric: &str| {
            let t = &profile.thresholds[metric];
            (t.warning.unwrap(), t.critical.unwrap())
        };
        assert_eq!(pair("cpu_percent"), cpu, "{dir}");
        assert_eq!(pair("response_time_ms"), response, "{dir}");
        assert_eq!(pair("error_rate"), errors, "{dir}");
        assert_eq!(profile.max_agents, Some(max), "{dir}");
        let pool = loaded.policy.pool(name).unwrap();
        assert_eq!(loaded.policy.max_agents(pool), max, "{dir}");
        let rules = loaded.policy.rules_for_pool(name);
        assert!(
            rules
                .iter()
                .any(|r| r.name == format!("{name}_cpu_percent_critical") && r.above == cpu.1)
        );
    }
    let swarm = load_dir(&root.join("swarm")).unwrap();
    let latency = &swarm.policy.profiles["swarm"].thresholds["communication_latency_ms"];
    assert_eq!(
        (latency.warning, latency.critical),
        (Some(200.0), Some(500.0))
    );
    assert_eq!(swarm.files.len(), 2);

    let ai = load_dir(&root.join("ai-fleet")).unwrap_or_else(|e| panic!("ai-fleet: {e}"));
    assert!(ai.warnings.is_empty(), "{:?}", ai.warnings);
    assert!(
        ai.policy
            .genai
            .price(Some("openai"), "gpt-4o-mini")
            .is_some()
    );

    let kubernetes = load_dir(&root.join("kubernetes")).unwrap();
    assert!(kubernetes.warnings.is_empty(), "{:?}", kubernetes.warnings);
    let driver = &kubernetes.policy.pools["workers"].driver;
    assert!(
        matches!(driver, DriverConfig::Kubernetes { name, namespace: Some(ns), kind: WorkloadKind::Deployment, .. } if name == "workers" && ns == "agents"),
        "{driver:?}"
    );

    let prometheus = load_dir(&root.join("prometheus")).unwrap();
    assert!(prometheus.warnings.is_empty(), "{:?}", prometheus.warnings);
    let scale_on = prometheus.policy.pools["worker"].scale_on.as_ref().unwrap();
    assert_eq!(scale_on.input, prometheus.policy.ingest.promql[0].input);
}

#[test]
fn the_schema_documents_every_field() {
    let schema = policy_schema().to_value();
    let global = &schema["$defs"]["Global"]["properties"]["sampling_interval_secs"];
    assert!(global["description"].as_str().unwrap().contains("samples"));
    assert_eq!(schema["title"], "swarmpilot policy");
}

/// The policy in the shipped Kubernetes manifest loads, with the token variable it names set.
#[test]
fn the_kubernetes_manifest_carries_a_valid_policy() {
    let manifest = include_str!("../../deploy/kubernetes/swarmpilot.yaml");
    let block = manifest
        .split_once("policy.toml: |\n")
        .expect("the manifest's policy")
        .1;
    let policy: String = block
        .lines()
        .take_while(|line| line.is_empty() || line.starts_with("    "))
        .map(|line| format!("{}\n", line.get(4..).unwrap_or_default()))
        .collect();
    let env = swarmpilot_core::policy::ListedEnvironment {
        vars: vec![
            "SWARMPILOT_OPS_TOKEN".into(),
            "SWARMPILOT_DB_PASSWORD".into(),
        ],
        files: Vec::new(),
    };
    let loaded = swarmpilot_core::policy::load_str("manifest", &policy, &env)
        .unwrap_or_else(|e| panic!("{e}\n{policy}"));
    // The one warning: the database is reached without TLS, as its comment says.
    let warnings: Vec<String> = loaded.warnings.iter().map(ToString::to_string).collect();
    assert!(
        warnings.len() == 1 && warnings[0].contains("not encrypted"),
        "{warnings:?}"
    );
    assert!(loaded.policy.store.url.is_some());
    assert!(loaded.policy.store.kubernetes_lease.is_some());
    assert!(loaded.policy.pools.contains_key("workers"));
}

/// Scrape authentication: secrets by variable or file only, one kind of credentials, and no
/// Authorization header written out in the policy.
#[test]
fn scrape_auth_is_checked() {
    let text = r#"
[pools.external]
min_agents = 0
driver = { type = "none" }

[[ingest.scrape]]
url = "http://127.0.0.1:9/metrics"
agent = "a-1"
metrics = [{ from = "x", to = "x" }]
auth = { bearer_token_env = "SWARMPILOT_TEST_UNSET_VARIABLE", basic_auth = { username = "u:v", password_file = "/nonexistent/pw" }, headers = { "Authorization" = "Bearer inline", "bad header" = "x" }, ca_file = "/nonexistent/ca.pem" }
"#;
    let error = load_str("p.toml", text).expect_err("the auth is refused");
    let messages: Vec<String> = error.errors.iter().map(ToString::to_string).collect();
    for wanted in [
        "environment variable SWARMPILOT_TEST_UNSET_VARIABLE is not set",
        "set a bearer token or basic_auth, not both",
        "the user name is empty or holds a `:`",
        "secret file /nonexistent/pw does not exist",
        "put credentials in bearer_token_* or basic_auth",
        "\"bad header\" is not an HTTP header name",
        "CA file /nonexistent/ca.pem does not exist",
    ] {
        assert!(
            messages.iter().any(|m| m.contains(wanted)),
            "no {wanted:?} in {messages:#?}"
        );
    }
}

/// The store: a PostgreSQL URL, its password by reference, and nothing without a URL.
#[test]
fn store_settings_are_checked() {
    let good = r#"
[store]
url = "postgres://swarmpilot@db.internal:5432/swarmpilot"
password_env = "PATH"
"#;
    let loaded = load_str("p.toml", good).expect("a PostgreSQL store loads");
    assert_eq!(
        loaded.policy.store.url.as_deref(),
        Some("postgres://swarmpilot@db.internal:5432/swarmpilot")
    );
    // A server beyond this machine is reached in clear: said so.
    assert!(
        loaded
            .warnings
            .iter()
            .any(|w| w.to_string().contains("not encrypted")),
        "{:?}",
        loaded.warnings
    );
    let local = "[store]\nurl = \"postgres://swarmpilot@127.0.0.1:5432/x\"\nlease_secs = 5\n";
    let loaded = load_str("p.toml", local).expect("a local PostgreSQL store loads");
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    assert_eq!(loaded.policy.store.lease_secs, 5);
    for (text, wanted) in [
        ("url = \"postgres://u:secret@db/x\"", "carries a password"),
        (
            "url = \"postgres://u@db/x?password=s\"",
            "carries a password",
        ),
        (
            "url = \"postgres://u@db/x?sslmode=require\"",
            "asks for TLS",
        ),
        (
            "url = \"postgres://u@db/x\"\nlease_secs = 1",
            "below the minimum 3",
        ),
    ] {
        let error = load_str("p.toml", &format!("[store]\n{text}\n")).expect_err(text);
        let messages: Vec<String> = error.errors.iter().map(ToString::to_string).collect();
        assert!(messages.iter().any(|m| m.contains(wanted)), "{messages:?}");
        assert!(
            !messages.iter().any(|m| m.contains("secret@")),
            "the password is not shown"
        );
    }
    let bad = "[store]\nurl = \"mysql://db/x\"\npassword_file = \"/nonexistent/pw\"\n";
    let error = load_str("p.toml", bad).expect_err("the store is refused");
    let messages: Vec<String> = error.errors.iter().map(ToString::to_string).collect();
    for wanted in [
        "p.toml:2:7",
        "is not a PostgreSQL URL",
        "secret file /nonexistent/pw does not exist",
    ] {
        assert!(
            messages.iter().any(|m| m.contains(wanted)),
            "no {wanted:?} in {messages:#?}"
        );
    }
    let orphan = "[store]\npassword_env = \"PATH\"\n";
    let error = load_str("p.toml", orphan).expect_err("a password without a URL is refused");
    assert!(error.errors[0].to_string().contains("no url"), "{error:?}");
}

/// A Kubernetes Lease election: on a shared store, with a valid name and namespace.
#[test]
fn a_kubernetes_lease_election_is_checked() {
    let good = "[store]\nurl = \"postgres://swarmpilot@127.0.0.1/x\"\n\
                [store.kubernetes_lease]\nname = \"swarmpilot-leader\"\nnamespace = \"ops\"\n";
    let loaded = load_str("p.toml", good).expect("a Lease election loads");
    let lease = loaded.policy.store.kubernetes_lease.expect("the Lease");
    assert_eq!(
        (lease.name.as_str(), lease.namespace.as_deref()),
        ("swarmpilot-leader", Some("ops"))
    );
    for (text, wanted) in [
        (
            "[store.kubernetes_lease]\nname = \"x\"\n",
            "needs a shared store",
        ),
        (
            "[store]\nurl = \"postgres://u@127.0.0.1/x\"\n[store.kubernetes_lease]\nname = \"Bad_Name\"\n",
            "not a Kubernetes object name",
        ),
        (
            "[store]\nurl = \"postgres://u@127.0.0.1/x\"\n[store.kubernetes_lease]\nname = \"l\"\nnamespace = \"a.b\"\n",
            "not a namespace name",
        ),
        (
            "[store]\nurl = \"postgres://u@127.0.0.1/x\"\n[store.kubernetes_lease]\nname = \"l\"\napi_server = \"ftp://x\"\n",
            "not an http:// or https:// URL",
        ),
        (
            "[store]\nurl = \"postgres://u@127.0.0.1/x\"\n[store.kubernetes_lease]\nname = \"l\"\nholder = \"me\"\n",
            "holder",
        ),
    ] {
        let error = load_str("p.toml", text).expect_err(text);
        let messages: Vec<String> = error.errors.iter().map(ToString::to_string).collect();
        assert!(
            messages.iter().any(|m| m.contains(wanted)),
            "{wanted}: {messages:?}"
        );
        assert!(
            messages.iter().all(|m| m.contains("p.toml:")),
            "{messages:?}"
        );
    }
}
