//! The `sql-corpus/` test: every statement classified as its `-- expect:` line says (and its
//! `-- set:` / `-- use:` lines, when present). The format is in `sql-corpus/README.md`.
//! Test-only code, so it may read the directory.

use super::{classify, digest, parse_set, use_schema, ClassifyCache, Flags, Kind, SessionAssign, SetEffect};

/// The issue asks for at least this many corpus statements.
const CORPUS_STATEMENTS_MIN: usize = 1500;

/// One corpus entry.
pub struct Entry {
    /// `file:line` of the statement's first line.
    pub at: String,
    pub sql: String,
    pub kind: Result<Kind, String>,
    pub flags: Result<Flags, String>,
    pub set: Option<Result<SetEffect, String>>,
    pub use_db: Option<Option<String>>,
}

fn parse_expect(spec: &str) -> (Result<Kind, String>, Result<Flags, String>) {
    let mut words = spec.split_whitespace();
    let kind = words.next().and_then(Kind::from_name).ok_or_else(|| format!("bad kind in `{spec}`"));
    let mut flags = Ok(Flags::default());
    for w in words {
        match (Flags::from_name(w), &mut flags) {
            (Some(f), Ok(acc)) => *acc |= f,
            (None, _) => flags = Err(format!("bad flag `{w}`")),
            _ => {}
        }
    }
    (kind, flags)
}

fn parse_set_spec(spec: &str) -> Result<SetEffect, String> {
    let spec = spec.trim();
    match spec {
        "Global" => return Ok(SetEffect::Global),
        "Opaque" => return Ok(SetEffect::Opaque),
        _ => {}
    }
    let list = spec.strip_prefix("Session ").ok_or_else(|| format!("bad set spec `{spec}`"))?;
    let mut out = Vec::new();
    for item in list.split(" | ") {
        let (name, text) = item.split_once('=').ok_or_else(|| format!("bad set item `{item}`"))?;
        let (name, computed) = match name.strip_suffix('~') {
            Some(n) => (n, true),
            None => (name, false),
        };
        out.push(SessionAssign { name: name.trim().to_string(), text: text.trim().to_string(), computed });
    }
    Ok(SetEffect::Session(out))
}

/// Parses one corpus file.
pub fn parse_file(name: &str, text: &str) -> Vec<Entry> {
    let mut entries = Vec::new();
    let mut pending: Option<Entry> = None;
    let mut body: Vec<&str> = Vec::new();
    let mut body_line = 0usize;
    let flush = |pending: &mut Option<Entry>, body: &mut Vec<&str>, entries: &mut Vec<Entry>, line: usize| {
        if let Some(mut e) = pending.take() {
            e.sql = body.join("\n");
            e.at = format!("{name}:{line}");
            entries.push(e);
        }
        body.clear();
    };
    for (i, line) in text.lines().enumerate() {
        let lineno = i + 1;
        let directive = |tag: &str| line.strip_prefix(tag).map(str::trim);
        if let Some(spec) = directive("-- expect:") {
            // An expect line always opens a new entry, even without a blank line before.
            flush(&mut pending, &mut body, &mut entries, body_line);
            let (kind, flags) = parse_expect(spec);
            pending = Some(Entry { at: String::new(), sql: String::new(), kind, flags, set: None, use_db: None });
            continue;
        }
        if body.is_empty() {
            if let Some(e) = pending.as_mut() {
                if let Some(spec) = directive("-- set:") {
                    e.set = Some(parse_set_spec(spec));
                    continue;
                }
                if let Some(spec) = directive("-- use:") {
                    e.use_db = Some((spec != "-").then(|| spec.to_string()));
                    continue;
                }
                if !line.trim().is_empty() {
                    body.push(line);
                    body_line = lineno;
                }
            }
            // Outside an entry: commentary.
            continue;
        }
        if line.trim().is_empty() || line == ";;" {
            flush(&mut pending, &mut body, &mut entries, body_line);
            continue;
        }
        body.push(line);
    }
    flush(&mut pending, &mut body, &mut entries, body_line);
    entries
}

/// All entries of `sql-corpus/*.sql`.
pub fn load() -> Vec<Entry> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("sql-corpus");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("sql-corpus/ readable")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "sql"))
        .collect();
    files.sort();
    let mut all = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).expect("corpus file is UTF-8");
        let name = format!("sql-corpus/{}", f.file_name().unwrap().to_string_lossy());
        all.extend(parse_file(&name, &text));
    }
    all
}

fn show(kind: Kind, flags: Flags) -> String {
    let mut s = kind.name().to_string();
    for n in flags.names() {
        s.push(' ');
        s.push_str(n);
    }
    s
}

#[test]
fn corpus_statements_classify_as_expected() {
    let entries = load();
    let mut failures = Vec::new();
    let mut cache = ClassifyCache::new(1024);
    for e in &entries {
        let got = classify(e.sql.as_bytes());
        match (&e.kind, &e.flags) {
            (Ok(k), Ok(f)) if got.kind == *k && got.flags == *f => {}
            (Ok(k), Ok(f)) => failures.push(format!(
                "{}: expected `{}`, got `{}`\n    {}",
                e.at,
                show(*k, *f),
                show(got.kind, got.flags),
                e.sql.replace('\n', "\n    ")
            )),
            (Err(m), _) | (_, Err(m)) => failures.push(format!("{}: {m}", e.at)),
        }
        // By digest: an earlier statement of the same shape answers for this one.
        if cache.classify_by_digest(e.sql.as_bytes()) != got || cache.classify(e.sql.as_bytes()) != got {
            failures.push(format!("{}: cached classification differs (digest collision of shapes)", e.at));
        }
        if let Some(want) = &e.set {
            match want {
                Ok(w) => {
                    let got = parse_set(e.sql.as_bytes());
                    if &got != w {
                        failures.push(format!("{}: parse_set expected {w:?}, got {got:?}", e.at));
                    }
                }
                Err(m) => failures.push(format!("{}: {m}", e.at)),
            }
        }
        if let Some(want) = &e.use_db {
            let got = use_schema(e.sql.as_bytes());
            if &got != want {
                failures.push(format!("{}: use_schema expected {want:?}, got {got:?}", e.at));
            }
        }
    }
    // Digest soundness as a cache key: same digest, same classification, over the corpus.
    let mut by_digest = std::collections::HashMap::new();
    for e in &entries {
        let c = classify(e.sql.as_bytes());
        if let Some((at, prev)) = by_digest.insert(digest(e.sql.as_bytes()), (e.at.clone(), c)) {
            if prev != c {
                failures.push(format!("{}: same digest as {at} but classifies differently", e.at));
            }
        }
    }
    if entries.len() < CORPUS_STATEMENTS_MIN {
        failures.push(format!("corpus holds {} statements, want >= {CORPUS_STATEMENTS_MIN}", entries.len()));
    }
    if !failures.is_empty() {
        panic!("{} of {} corpus statements mismatch:\n{}", failures.len(), entries.len(), failures.join("\n"));
    }
}

#[test]
fn corpus_format_parses_blocks_and_directives() {
    let text = "-- commentary\n-- expect: Read\nSELECT 1\n\n-- expect: SessionSet\n-- set: Session names=NAMES utf8\nSET NAMES utf8\n;;\n-- expect: Use\n-- use: db\nUSE db\n";
    let e = parse_file("t", text);
    assert_eq!(e.len(), 3);
    assert_eq!(e[0].sql, "SELECT 1");
    assert_eq!(e[0].at, "t:3");
    assert!(matches!(e[1].set, Some(Ok(SetEffect::Session(_)))));
    assert_eq!(e[2].use_db, Some(Some("db".into())));
}
