//! The layering of docs/architecture.md, enforced: a crate may depend only on crates
//! below it, and `isdet-data` and `isdet-sampler` never on candle.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Layer of each workspace package; a package may depend only on packages
/// of a strictly lower layer.
const LAYERS: &[(&str, u32)] = &[
    ("isdet-base", 0),
    ("isdet-kernels", 0),
    ("isdet-data", 1),
    ("isdet-sampler", 1),
    ("isdet-detector", 2),
    ("isdet-heuristics", 2),
    ("isdet-eval", 2),
    ("isdet-trainer", 3),
    ("isdet-bench", 3),
    ("isdet-report", 4),
    ("xtask", 5),
    ("isdet-tests", 5),
];

/// Packages that must not depend on candle at all (the kernels, at layer
/// 0, may not depend on any other isdet crate: they know no model).
const CANDLE_FREE: &[&str] = &["isdet-base", "isdet-data", "isdet-sampler"];

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
            .any(|m| m.contains("isdet-data (layer 1) depends on isdet-trainer"))
    );
    assert!(
        v.iter()
            .any(|m| m.contains("isdet-data must not depend on candle"))
    );
    assert!(
        v.iter()
            .any(|m| m.contains("isdet-detector (layer 2) depends on isdet-eval"))
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

/// Each top-level module of a crate's `src/` (a file or a folder) with the
/// sibling modules its code names through `crate::…` (comments left out).
fn module_imports(src: &Path) -> BTreeMap<String, std::collections::BTreeSet<String>> {
    fn files(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                files(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let mut all = Vec::new();
    files(src, &mut all);
    let mut imports: BTreeMap<String, std::collections::BTreeSet<String>> = BTreeMap::new();
    for path in all {
        let rel = path.strip_prefix(src).unwrap();
        let top = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy();
        let module = top.trim_end_matches(".rs").to_string();
        if module == "lib" || module == "main" {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let entry = imports.entry(module.clone()).or_default();
        for line in text.lines().map(str::trim).filter(|l| !l.starts_with("//")) {
            for (at, _) in line.match_indices("crate::") {
                let name: String = line[at + 7..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() && name != module {
                    entry.insert(name);
                }
            }
        }
    }
    imports
}

/// Pairs of modules that import each other.
fn module_cycles(imports: &BTreeMap<String, std::collections::BTreeSet<String>>) -> Vec<String> {
    let mut found = Vec::new();
    for (a, deps) in imports {
        for b in deps {
            if a < b && imports.get(b).is_some_and(|d| d.contains(a)) {
                found.push(format!("{a} <-> {b}"));
            }
        }
    }
    found
}

#[test]
fn no_module_imports_one_that_imports_it_back() {
    let mut found = Vec::new();
    let mut srcs: Vec<PathBuf> = std::fs::read_dir(root().join("crates"))
        .unwrap()
        .map(|e| e.unwrap().path().join("src"))
        .collect();
    srcs.push(root().join("xtask/src"));
    for src in srcs.iter().filter(|s| s.is_dir()) {
        for cycle in module_cycles(&module_imports(src)) {
            found.push(format!("{}: {cycle}", src.display()));
        }
    }
    assert!(
        found.is_empty(),
        "modules that import each other:\n{}",
        found.join("\n")
    );
}

#[test]
fn a_module_cycle_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("lib.rs"), "mod a;\nmod b;\n").unwrap();
    std::fs::write(dir.path().join("a.rs"), "use crate::b::f;\n").unwrap();
    std::fs::create_dir(dir.path().join("b")).unwrap();
    std::fs::write(dir.path().join("b/mod.rs"), "// crate::c in a comment\n").unwrap();
    std::fs::write(dir.path().join("b/inner.rs"), "fn g() { crate::a::h() }\n").unwrap();
    let imports = module_imports(dir.path());
    assert_eq!(module_cycles(&imports), ["a <-> b"]);
    assert!(!imports["b"].contains("c"), "comments are not imports");
}
