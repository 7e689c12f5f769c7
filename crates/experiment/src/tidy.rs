//! House-keeping checks run as tests: the modules of this crate import each
//! other without a loop (shared types live in [`crate::records`], below the
//! modules that write and read them).

use std::collections::BTreeMap;
use std::path::Path;

/// Every top-level module (a file `src/NAME.rs`, with its folder `src/NAME/`)
/// and the set of modules it names as `crate::other`.
fn module_imports(src: &Path) -> BTreeMap<String, Vec<String>> {
    let mut files: Vec<(String, std::path::PathBuf)> = Vec::new();
    for entry in std::fs::read_dir(src).unwrap() {
        let path = entry.unwrap().path();
        let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
        if path.is_dir() {
            for sub in walk(&path) {
                files.push((stem.clone(), sub));
            }
        } else if path.extension().is_some_and(|e| e == "rs") && stem != "lib" {
            files.push((stem, path));
        }
    }
    let modules: Vec<String> = files.iter().map(|(m, _)| m.clone()).collect();
    let mut imports: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (module, path) in &files {
        let text = std::fs::read_to_string(path).unwrap();
        // Comments out, lines joined: `use crate::{...}` may span lines.
        let code: String = text
            .lines()
            .map(|l| l.split("//").next().unwrap_or(""))
            .collect::<Vec<_>>()
            .join(" ");
        let uses = imports.entry(module.clone()).or_default();
        for (i, _) in code.match_indices("crate::") {
            for name in first_segments(&code[i + "crate::".len()..]) {
                let known = modules.iter().any(|m| m == name);
                if known && name != module && !uses.iter().any(|u| u == name) {
                    uses.push(name.to_string());
                }
            }
        }
    }
    imports
}

/// The first path segments after `crate::`: `a` of `a::b`, or `a` and `b`
/// of `{a::x, b::{y, z}}`.
fn first_segments(rest: &str) -> Vec<&str> {
    let Some(list) = rest.strip_prefix('{') else {
        return vec![ident(rest)];
    };
    // Split the braced list at its top-level commas.
    let (mut depth, mut start, mut names) = (0usize, 0usize, Vec::new());
    for (i, c) in list.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => {
                names.push(ident(&list[start..i]));
                break;
            }
            '}' => depth -= 1,
            ',' if depth == 0 => {
                names.push(ident(&list[start..i]));
                start = i + 1;
            }
            _ => {}
        }
    }
    names
}

/// The identifier `s` starts with (after blanks).
fn ident(s: &str) -> &str {
    let s = s.trim_start();
    let end = s
        .find(|c: char| !c.is_alphanumeric() && c != '_')
        .unwrap_or(s.len());
    &s[..end]
}

/// The `.rs` files under `dir`, recursively.
fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    out
}

/// A loop of imports starting at `module`, if any (depth-first search).
fn find_loop(
    imports: &BTreeMap<String, Vec<String>>,
    module: &str,
    path: &mut Vec<String>,
) -> Option<Vec<String>> {
    if let Some(i) = path.iter().position(|m| m == module) {
        let mut cycle = path[i..].to_vec();
        cycle.push(module.to_string());
        return Some(cycle);
    }
    path.push(module.to_string());
    for next in imports.get(module).into_iter().flatten() {
        if let Some(cycle) = find_loop(imports, next, path) {
            return Some(cycle);
        }
    }
    path.pop();
    None
}

#[test]
fn no_two_modules_import_each_other_even_through_others() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let imports = module_imports(&src);
    // The scan sees the known imports (so an empty result is not a blind spot).
    assert!(
        imports["plot"].contains(&"records".to_string()),
        "{imports:?}"
    );
    assert!(
        imports["search"].contains(&"worker".to_string()),
        "{imports:?}"
    );
    for module in imports.keys() {
        if let Some(cycle) = find_loop(&imports, module, &mut Vec::new()) {
            panic!(
                "modules import each other: {} (move the shared items into a module below \
                 them, e.g. `records`)",
                cycle.join(" -> ")
            );
        }
    }
}

#[test]
fn braced_and_nested_imports_are_seen() {
    assert_eq!(first_segments("run::files;"), ["run"]);
    assert_eq!(
        first_segments("{io, search::{self, Trial},\n    run::x}; more"),
        ["io", "search", "run"]
    );
}

#[test]
fn a_loop_is_found() {
    let imports: BTreeMap<String, Vec<String>> = [
        ("a".to_string(), vec!["b".to_string()]),
        ("b".to_string(), vec!["c".to_string()]),
        ("c".to_string(), vec!["a".to_string()]),
    ]
    .into();
    let cycle = find_loop(&imports, "a", &mut Vec::new()).unwrap();
    assert_eq!(cycle, ["a", "b", "c", "a"]);
}
