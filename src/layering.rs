//! The import rules of `docs/ARCHITECTURE.md` ("Who may import whom"), checked against
//! every source file: a `crate::` path to a module the table does not allow, a module the
//! table does not list, or a file in `backend/`/`frontend/` that uses a later file of its
//! folder fails the test. Comment lines are not code and are skipped.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The rows of a markdown table between two markers: first cell → names in the second.
fn table(doc: &str, begin: &str, end: &str) -> Vec<(String, Vec<String>)> {
    let start = doc.find(begin).unwrap_or_else(|| panic!("{begin} missing in docs/ARCHITECTURE.md"));
    let stop = doc.find(end).unwrap_or_else(|| panic!("{end} missing in docs/ARCHITECTURE.md"));
    let names = |cell: &str| -> Vec<String> {
        cell.split(',').map(|n| n.trim().trim_matches('`').to_string()).filter(|n| !n.is_empty() && n != "—").collect()
    };
    doc[start..stop]
        .lines()
        .filter(|l| l.starts_with("| `"))
        .map(|l| {
            let cells: Vec<&str> = l.trim_matches('|').split('|').collect();
            (cells[0].trim().trim_matches('`').to_string(), names(cells[1]))
        })
        .collect()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// Identifiers following `prefix` in the code lines of `text` (`crate::x`, `super::y`,
/// and each name of `super::{a, b::c}`).
fn paths_after(text: &str, prefix: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for line in text.lines().filter(|l| !l.trim_start().starts_with("//")) {
        let mut rest = line;
        while let Some(at) = rest.find(prefix) {
            rest = &rest[at + prefix.len()..];
            let body = match rest.strip_prefix('{') {
                Some(group) => group.split('}').next().unwrap_or(""),
                None => rest,
            };
            for part in body.split(',') {
                let name: String = part.trim().chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
                if !name.is_empty() {
                    out.insert(name);
                }
                if !rest.starts_with('{') {
                    break;
                }
            }
        }
    }
    out
}

#[test]
fn imports_follow_the_layers_in_architecture_md() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let doc = std::fs::read_to_string(root.join("docs/ARCHITECTURE.md")).unwrap();
    let layers: BTreeMap<String, BTreeSet<String>> = table(&doc, "<!-- BEGIN LAYERS -->", "<!-- END LAYERS -->")
        .into_iter()
        .map(|(m, deps)| (m, deps.into_iter().collect()))
        .collect();
    let folders: BTreeMap<String, Vec<String>> =
        table(&doc, "<!-- BEGIN FOLDERS -->", "<!-- END FOLDERS -->").into_iter().collect();
    let src = root.join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut broken = Vec::new();
    for file in files {
        let rel = file.strip_prefix(&src).unwrap().to_string_lossy().into_owned();
        let parts: Vec<&str> = rel.trim_end_matches(".rs").split('/').collect();
        let module = parts[0];
        if matches!(module, "lib" | "main" | "layering") {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        let Some(allowed) = layers.get(module) else {
            broken.push(format!("{rel}: module `{module}` is not in the table"));
            continue;
        };
        for used in paths_after(&text, "crate::") {
            if used != module && layers.contains_key(&used) && !allowed.contains(&used) {
                broken.push(format!("{rel}: uses `{used}`, which `{module}` may not import"));
            }
        }
        // Order of the files inside backend/ and frontend/.
        let (Some(order), Some(&me)) = (folders.get(module), parts.get(1)) else { continue };
        if me == "mod" {
            continue;
        }
        let Some(my_rank) = order.iter().position(|f| f == me) else {
            broken.push(format!("{rel}: file `{me}` is not in the `{module}` folder row"));
            continue;
        };
        let mut siblings = paths_after(&text, "super::");
        siblings.extend(paths_after(&text, &format!("crate::{module}::")));
        for s in siblings {
            if let Some(rank) = order.iter().position(|f| *f == s) {
                if rank > my_rank {
                    broken.push(format!("{rel}: uses `{module}/{s}.rs`, which comes after it"));
                }
            }
        }
    }
    assert!(broken.is_empty(), "imports that break docs/ARCHITECTURE.md:\n{}", broken.join("\n"));
}

#[test]
fn the_checker_sees_grouped_and_plain_paths() {
    let code = "use super::{io::ClientIo, lease::Leases};\n// use crate::server::X;\nlet x = crate::route::is_read(c);";
    assert_eq!(paths_after(code, "super::"), ["io", "lease"].map(String::from).into_iter().collect());
    assert_eq!(paths_after(code, "crate::"), ["route"].map(String::from).into_iter().collect());
}
