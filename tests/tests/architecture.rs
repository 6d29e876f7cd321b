//! The layering of DESIGN.md, enforced: a crate may depend only on crates
//! below it, and `isdet-data` and `isdet-sampler` never on candle.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Layer of each workspace package; a package may depend only on packages
/// of a strictly lower layer.
const LAYERS: &[(&str, u32)] = &[
    ("isdet-data", 0),
    ("isdet-sampler", 0),
    ("isdet-kernels", 0),
    ("isdet-detector", 1),
    ("isdet-heuristics", 1),
    ("isdet-eval", 1),
    ("isdet-trainer", 2),
    ("isdet-report", 3),
    ("xtask", 4),
    ("isdet-tests", 4),
];

/// Packages that must not depend on candle at all (the kernels, at layer
/// 0, may not depend on any other isdet crate: they know no model).
const CANDLE_FREE: &[&str] = &["isdet-data", "isdet-sampler"];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// (package name, every dependency name of every kind) for each member.
fn manifests() -> Vec<(String, Vec<String>)> {
    let ws: toml::Table =
        toml::from_str(&std::fs::read_to_string(root().join("Cargo.toml")).unwrap()).unwrap();
    let members = ws["workspace"]["members"].as_array().unwrap();
    members
        .iter()
        .map(|m| {
            let path = root().join(m.as_str().unwrap()).join("Cargo.toml");
            let text = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let manifest: toml::Table = toml::from_str(&text).unwrap();
            let name = manifest["package"]["name"].as_str().unwrap().to_string();
            let mut deps = Vec::new();
            for section in ["dependencies", "dev-dependencies", "build-dependencies"] {
                if let Some(t) = manifest.get(section).and_then(|v| v.as_table()) {
                    deps.extend(t.keys().cloned());
                }
            }
            if let Some(targets) = manifest.get("target").and_then(|v| v.as_table()) {
                for cfg in targets.values() {
                    for section in ["dependencies", "dev-dependencies", "build-dependencies"] {
                        if let Some(t) = cfg.get(section).and_then(|v| v.as_table()) {
                            deps.extend(t.keys().cloned());
                        }
                    }
                }
            }
            (name, deps)
        })
        .collect()
}

/// The violations of the layering rules in `packages`.
fn violations(packages: &[(String, Vec<String>)]) -> Vec<String> {
    let layers: BTreeMap<&str, u32> = LAYERS.iter().copied().collect();
    let mut found = Vec::new();
    for (name, deps) in packages {
        let Some(&own) = layers.get(name.as_str()) else {
            found.push(format!(
                "{name} is not placed in a layer of the architecture test"
            ));
            continue;
        };
        for dep in deps {
            if let Some(&theirs) = layers.get(dep.as_str())
                && theirs >= own
                && dep != name
            {
                found.push(format!(
                    "{name} (layer {own}) depends on {dep} (layer {theirs})"
                ));
            }
            if CANDLE_FREE.contains(&name.as_str()) && dep.starts_with("candle") {
                found.push(format!(
                    "{name} must not depend on candle, but depends on {dep}"
                ));
            }
        }
    }
    found
}

#[test]
fn workspace_respects_layering() {
    let packages = manifests();
    assert!(
        packages.iter().any(|(n, _)| n == "isdet-data"),
        "isdet-data not found among members"
    );
    let v = violations(&packages);
    assert!(v.is_empty(), "architecture violations:\n{}", v.join("\n"));
}

#[test]
fn upward_and_candle_dependencies_are_detected() {
    let bad = vec![
        (
            "isdet-data".to_string(),
            vec!["isdet-trainer".to_string(), "candle-core".to_string()],
        ),
        (
            "isdet-detector".to_string(),
            vec!["isdet-data".to_string(), "isdet-eval".to_string()],
        ),
        ("isdet-sampler".to_string(), vec!["candle-nn".to_string()]),
        ("isdet-kernels".to_string(), vec!["isdet-data".to_string()]),
        ("newcomer".to_string(), vec![]),
    ];
    let v = violations(&bad);
    assert_eq!(v.len(), 6, "{v:#?}");
    assert!(
        v.iter()
            .any(|m| m.contains("isdet-kernels (layer 0) depends on isdet-data"))
    );
    assert!(
        v.iter()
            .any(|m| m.contains("isdet-data (layer 0) depends on isdet-trainer"))
    );
    assert!(
        v.iter()
            .any(|m| m.contains("isdet-data must not depend on candle"))
    );
    assert!(
        v.iter()
            .any(|m| m.contains("isdet-detector (layer 1) depends on isdet-eval"))
    );
    assert!(
        v.iter()
            .any(|m| m.contains("isdet-sampler must not depend on candle"))
    );
    assert!(v.iter().any(|m| m.contains("newcomer is not placed")));
    let good = vec![(
        "isdet-trainer".to_string(),
        vec!["isdet-data".to_string(), "candle-core".to_string()],
    )];
    assert!(violations(&good).is_empty());
}
