//! The `swarmpilot` package's top-level modules form no cycle, and the edges ARCHITECTURE.md
//! rules out stay out: sources and parsers (`ingest`) below the actors, the offline replay
//! beside the CLI rather than under it, the bundled worker apart from the controller's API.
//! Edges are the `crate::<module>` paths in non-test code.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Edges that must not exist: (from, to).
const FORBIDDEN: &[(&str, &str)] = &[
    ("ingest", "actors"),
    ("ingest", "api"),
    ("policy", "ingest"),
    ("replay", "cli"),
    ("api", "replay"),
    ("worker", "api"),
    ("worker", "actors"),
    ("store", "actors"),
    ("drivers", "actors"),
    ("notify", "actors"),
];

/// The code of `text` before its first `#[cfg(test)]`, or none for a test file.
fn non_test(path: &Path, text: &str) -> String {
    let test_file = path.file_name().is_some_and(|n| n == "tests.rs")
        || path.components().any(|c| c.as_os_str() == "tests");
    if test_file {
        return String::new();
    }
    text.split("#[cfg(test)]").next().unwrap_or("").to_string()
}

/// Top-level module → the top-level modules its code names as `crate::<name>`.
fn graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut files = Vec::new();
    crate::util::rust_files(src, &mut files);
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in files {
        let relative = file.strip_prefix(src).unwrap();
        let first = relative.components().next().unwrap().as_os_str();
        let module = first.to_string_lossy().trim_end_matches(".rs").to_string();
        let code = non_test(relative, &std::fs::read_to_string(&file).unwrap());
        let targets = edges.entry(module.clone()).or_default();
        for (at, _) in code.match_indices("crate::") {
            let name: String = code[at + 7..]
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                .collect();
            if !name.is_empty() && name != module {
                targets.insert(name);
            }
        }
    }
    edges
}

/// A cycle through `start`, if one exists, as the path of modules.
fn cycle_through(edges: &BTreeMap<String, BTreeSet<String>>, start: &str) -> Option<Vec<String>> {
    let mut stack = vec![vec![start.to_string()]];
    let mut seen = BTreeSet::new();
    while let Some(path) = stack.pop() {
        let last = path.last().unwrap();
        for next in edges.get(last).into_iter().flatten() {
            if next == start {
                let mut cycle = path.clone();
                cycle.push(next.clone());
                return Some(cycle);
            }
            if seen.insert(next.clone()) {
                let mut longer = path.clone();
                longer.push(next.clone());
                stack.push(longer);
            }
        }
    }
    None
}

#[test]
fn top_level_modules_form_no_cycle_and_no_ruled_out_edge() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let edges = graph(&src);
    assert!(
        edges.len() > 10 && edges["controller"].contains("actors"),
        "the walk found the modules: {edges:?}"
    );
    for module in edges.keys() {
        assert_eq!(cycle_through(&edges, module), None, "{edges:#?}");
    }
    for (from, to) in FORBIDDEN {
        assert!(
            !edges.get(*from).is_some_and(|t| t.contains(*to)),
            "{from} must not use {to}: {:?}",
            edges[*from]
        );
    }
}

#[test]
fn a_cycle_is_found_when_there_is_one() {
    let edges: BTreeMap<String, BTreeSet<String>> = [
        ("a", vec!["b"]),
        ("b", vec!["c"]),
        ("c", vec!["a"]),
        ("d", vec!["a"]),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.into_iter().map(String::from).collect()))
    .collect();
    assert_eq!(
        cycle_through(&edges, "a"),
        Some(vec!["a".into(), "b".into(), "c".into(), "a".into()])
    );
    assert_eq!(cycle_through(&edges, "d"), None);
}
