//! The sans-I/O core stays sans-I/O: neither what `swarmpilot-core` declares (`cargo
//! metadata`) nor anything it reaches through normal dependencies (`cargo tree`) may be an
//! async runtime, an actor system, an HTTP stack, a database or an OS crate.

use std::collections::BTreeSet;
use std::process::Command;

use serde_json::Value;

/// Crates the core must never reach, by name or name prefix (`actix` covers actix-web).
const FORBIDDEN: &[&str] = &[
    "tokio",
    "actix",
    "async-std",
    "mio",
    "socket2",
    "hyper",
    "h2",
    "reqwest",
    "tungstenite",
    "rusqlite",
    "libsqlite3-sys",
    "sqlx",
    "postgres",
    "sysinfo",
    "nix",
    "notify",
];

fn forbidden(name: &str) -> bool {
    FORBIDDEN.iter().any(|f| {
        name == *f || name.starts_with(&format!("{f}-")) || name.starts_with(&format!("{f}_"))
    })
}

fn cargo(args: &[&str]) -> String {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = Command::new(cargo)
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("cargo prints UTF-8")
}

/// The names of every package `root` reaches through normal dependencies, with the features
/// building `root` alone enables. (`cargo metadata` resolves features for the whole
/// workspace, where the main package turns on lettre's tokio transport; `cargo tree -p`
/// resolves them for the one package, as `cargo build -p swarmpilot-core` does.)
fn normal_closure(root: &str) -> BTreeSet<String> {
    cargo(&[
        "tree", "--locked", "-p", root, "-e", "normal", "--prefix", "none", "-f", "{p}",
    ])
    .lines()
    .filter_map(|line| line.split_whitespace().next())
    .map(str::to_string)
    .collect()
}

#[test]
fn core_depends_on_no_runtime_http_database_or_os_crate() {
    // What the core declares, from `cargo metadata`: no forbidden crate, optional or not.
    let metadata: Value = serde_json::from_str(&cargo(&[
        "metadata",
        "--format-version",
        "1",
        "--locked",
        "--no-deps",
    ]))
    .expect("metadata is JSON");
    let core = metadata["packages"]
        .as_array()
        .and_then(|packages| packages.iter().find(|p| p["name"] == "swarmpilot-core"))
        .expect("swarmpilot-core is a workspace member");
    let declared: Vec<&str> = core["dependencies"]
        .as_array()
        .expect("dependencies")
        .iter()
        .filter(|d| d["kind"].is_null())
        .filter_map(|d| d["name"].as_str())
        .collect();
    assert!(declared.contains(&"linfa"), "{declared:?}");
    let bad: Vec<&&str> = declared.iter().filter(|name| forbidden(name)).collect();
    assert!(bad.is_empty(), "swarmpilot-core declares {bad:?}");

    // What it reaches, to the leaves. The walk is checked on the package that must reach them.
    let outer = normal_closure("swarmpilot");
    for expected in [
        "tokio",
        "actix",
        "reqwest",
        "rusqlite",
        "sysinfo",
        "swarmpilot-core",
    ] {
        assert!(
            outer.contains(expected),
            "swarmpilot should reach {expected}"
        );
    }
    let reached = normal_closure("swarmpilot-core");
    assert!(
        reached.contains("linfa") && reached.contains("nalgebra"),
        "{reached:?}"
    );
    let bad: Vec<&String> = reached.iter().filter(|name| forbidden(name)).collect();
    assert!(bad.is_empty(), "swarmpilot-core depends on {bad:?}");
}

#[test]
fn forbidden_names_match_families_not_lookalikes() {
    assert!(forbidden("tokio"));
    assert!(forbidden("tokio-util"));
    assert!(forbidden("actix-web"));
    assert!(forbidden("libsqlite3-sys"));
    assert!(!forbidden("tokenizers"));
    assert!(!forbidden("mime"));
    assert!(!forbidden("nalgebra"));
}

#[test]
fn core_holds_no_untyped_json() {
    let core = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("crates/core/src");
    let mut files = Vec::new();
    crate::util::rust_files(&core, &mut files);
    assert!(
        files.len() > 20,
        "the walk found the core's files: {files:?}"
    );
    let untyped: Vec<String> = files
        .iter()
        .filter(|f| {
            std::fs::read_to_string(f)
                .unwrap()
                .contains("serde_json::Value")
        })
        .map(|f| f.display().to_string())
        .collect();
    assert!(untyped.is_empty(), "serde_json::Value in {untyped:?}");
}
