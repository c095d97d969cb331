//! The layering rules of the two crates a request goes through, checked on their sources:
//! no file of `cognate-core` or of the server imports (directly or around a loop) a file that
//! imports it back; no operation area file uses another's items; the domain crate has no
//! HTTP in it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Every module of a crate's `src` (`signin::mfa` for `src/signin/mfa.rs`; `""` the root)
/// with the code it holds outside its `#[cfg(test)]` part, comments dropped.
fn modules(src: &Path) -> BTreeMap<String, String> {
    fn walk(dir: &Path, src: &Path, out: &mut BTreeMap<String, String>) {
        for entry in std::fs::read_dir(dir).expect("read src") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                walk(&path, src, out);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let relative = path.strip_prefix(src).expect("under src").with_extension("");
            let mut parts: Vec<String> = relative.iter().map(|p| p.to_string_lossy().into_owned()).collect();
            if matches!(parts.last().map(String::as_str), Some("mod" | "lib" | "main")) {
                parts.pop();
            }
            let text = std::fs::read_to_string(&path).expect("read file");
            out.insert(parts.join("::"), code_of(&text));
        }
    }
    let mut out = BTreeMap::new();
    walk(src, src, &mut out);
    out
}

/// A file's code outside its `mod tests`, comments dropped.
fn code_of(text: &str) -> String {
    let before_tests = text.split("\n#[cfg(test)]\nmod tests").next().unwrap_or_default();
    before_tests.lines().filter(|line| !line.trim_start().starts_with("//")).map(|line| format!("{line}\n")).collect()
}

/// The identifier-and-`::` paths that follow each occurrence of `lead` in `code`.
fn paths_after<'a>(code: &'a str, lead: &'a str) -> impl Iterator<Item = Vec<&'a str>> + 'a {
    code.match_indices(lead).filter_map(move |(at, _)| {
        let before = code[..at].chars().next_back();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
            return None;
        }
        let rest = &code[at + lead.len()..];
        let end = rest.find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':')).unwrap_or(rest.len());
        Some(rest[..end].split("::").filter(|s| !s.is_empty()).collect())
    })
}

/// Which modules each module refers to: `crate::a::b`, `super::x` and its own submodules'
/// items (`child::f`), each resolved to the deepest module that exists.
fn references(modules: &BTreeMap<String, String>) -> BTreeMap<String, BTreeSet<String>> {
    let join = |base: &str, rest: &[&str]| {
        let mut parts: Vec<&str> = if base.is_empty() { Vec::new() } else { base.split("::").collect() };
        parts.extend_from_slice(rest);
        parts.join("::")
    };
    let deepest = |base: &str, path: &[&str]| {
        (1..=path.len()).rev().map(|n| join(base, &path[..n])).find(|candidate| modules.contains_key(candidate))
    };
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (module, code) in modules {
        let parent = module.rsplit_once("::").map_or("", |(p, _)| p);
        let mut found = BTreeSet::new();
        found.extend(paths_after(code, "crate::").filter_map(|path| deepest("", &path)));
        for path in paths_after(code, "super::") {
            found.insert(deepest(parent, &path).unwrap_or_else(|| parent.to_owned()));
        }
        for child in modules.keys().filter_map(|m| m.strip_prefix(&join(module, &[])).map(str::to_owned)) {
            let Some(name) = child.strip_prefix("::").or((module.is_empty()).then_some(child.as_str())) else {
                continue;
            };
            if !name.contains("::") && paths_after(code, &format!("{name}::")).next().is_some() {
                found.insert(join(module, &[name]));
            }
        }
        found.remove(module);
        edges.insert(module.clone(), found);
    }
    edges
}

/// A loop of references, if there is one.
fn find_cycle(edges: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|n| n == node) {
            let mut cycle = path[at..].to_vec();
            cycle.push(node.to_owned());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_owned());
        for next in edges.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, edges, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(node.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    edges.keys().find_map(|node| visit(node, edges, &mut Vec::new(), &mut done))
}

fn crate_src(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(name).join("src")
}

#[test]
fn no_file_of_the_domain_or_the_server_imports_itself_around_a_loop() {
    for name in ["cognate-core", "cognate-server"] {
        let edges = references(&modules(&crate_src(name)));
        if let Some(cycle) = find_cycle(&edges) {
            panic!("{name}: import cycle {}", cycle.join(" -> "));
        }
    }
}

#[test]
fn operation_areas_do_not_use_each_other() {
    let edges = references(&modules(&crate_src("cognate-server")));
    for (module, targets) in edges.iter().filter(|(m, _)| m.starts_with("ops::")) {
        let areas: Vec<&String> = targets.iter().filter(|t| t.starts_with("ops::")).collect();
        assert!(areas.is_empty(), "{module} uses {areas:?}: shared logic belongs in cognate-core");
    }
}

#[test]
fn the_domain_crate_has_no_http_in_it() {
    let manifest = std::fs::read_to_string(crate_src("cognate-core").join("../Cargo.toml")).expect("manifest");
    for http in ["axum", "hyper", "http", "tower", "rustls"] {
        assert!(
            !manifest
                .lines()
                .any(|line| line.starts_with(&format!("{http}.")) || line.starts_with(&format!("{http} "))),
            "cognate-core depends on {http}"
        );
    }
}

#[test]
fn the_checker_sees_a_loop() {
    let modules = BTreeMap::from([
        ("a".to_owned(), code_of("use crate::b::f;\n")),
        ("b".to_owned(), code_of("fn g() { super::a::h() }\n")),
        ("c".to_owned(), code_of("// crate::a in a comment\n")),
    ]);
    let edges = references(&modules);
    assert_eq!(find_cycle(&edges).map(|c| c.len()), Some(3));
    assert!(edges["c"].is_empty());
}
