//! Property tests: on arbitrary bytes and on mutated corpus statements, the tokenizer,
//! `classify`, `parse_set`, `use_schema`, `digest` and `normalize` never panic, and every
//! token is an in-bounds, in-order slice of the input (nothing is read past its end).

use super::corpus::load;
use super::token::Tokenizer;
use super::{classify, digest, normalize, parse_set, use_schema, ClassifyCache};
use proptest::prelude::*;
use std::sync::OnceLock;

/// Bytes that steer the tokenizer into its interesting states.
const TRICKY: &[u8] = b"'\"`\\/*!+-#;@?().,=:<>\n M0x_";

fn corpus() -> &'static [String] {
    static C: OnceLock<Vec<String>> = OnceLock::new();
    C.get_or_init(|| load().into_iter().map(|e| e.sql).collect())
}

fn check_all(sql: &[u8]) {
    let mut end = 0usize;
    for t in Tokenizer::new(sql) {
        assert!(t.start >= end, "tokens overlap or go backwards");
        assert!(t.start + t.text.len() <= sql.len(), "token past the input");
        assert_eq!(&sql[t.start..t.start + t.text.len()], t.text);
        assert!(!t.text.is_empty(), "empty token");
        end = t.start + t.text.len();
    }
    let c = classify(sql);
    let _ = parse_set(sql);
    let _ = use_schema(sql);
    let _ = normalize(sql);
    let d = digest(sql);
    let mut cache = ClassifyCache::new(4);
    assert_eq!(cache.classify(sql), c);
    assert_eq!(cache.classify(sql), c);
    assert_eq!(cache.classify_by_digest(sql), c);
    assert_eq!(cache.classify_by_digest(sql), c);
    assert_eq!(digest(sql), d);
}

fn mixed_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(prop_oneof![any::<u8>(), prop::sample::select(TRICKY.to_vec())], 0..200)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(sql in mixed_bytes()) {
        check_all(&sql);
    }

    #[test]
    fn mutated_corpus_never_panics(
        pick in any::<prop::sample::Index>(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), 0u8..4, prop::sample::select(TRICKY.to_vec())), 1..6),
        cut in any::<prop::sample::Index>(),
    ) {
        let corpus = corpus();
        let mut sql = corpus[pick.index(corpus.len())].as_bytes().to_vec();
        for (at, op, b) in edits {
            if sql.is_empty() {
                sql.push(b);
                continue;
            }
            let i = at.index(sql.len());
            match op {
                0 => sql[i] = b,
                1 => sql.insert(i, b),
                2 => { sql.remove(i); }
                _ => sql[i] ^= 0x80,
            }
        }
        check_all(&sql);
        // Every prefix: truncation inside strings, comments and hints.
        let n = cut.index(sql.len() + 1);
        check_all(&sql[..n]);
    }
}

/// Inputs far past the sizes the proptest draws: deep nesting, many statements, long
/// unterminated runs. They must finish (no recursion per byte) and not panic.
#[test]
fn large_and_deep_inputs() {
    use super::{Flags, Kind};
    const BIG_BYTES: usize = 1 << 20;
    let parens = vec![b'('; BIG_BYTES];
    check_all(&parens);
    let mut deep = vec![b'('; BIG_BYTES / 2];
    deep.extend_from_slice(b"SELECT 1");
    assert_eq!(classify(&deep).kind, Kind::Read);
    let many = b"SELECT 1;".repeat(10_000);
    let c = classify(&many);
    assert_eq!(c.kind, Kind::Read);
    assert!(c.flags.contains(Flags::MULTI_STATEMENT | Flags::MULTI_HAS_WRITE), "past the cap counts as a write");
    check_all(&b";".repeat(BIG_BYTES));
    check_all(&b"SET STATEMENT a=1 FOR ".repeat(10_000));
    check_all(&b"EXPLAIN ANALYZE ".repeat(10_000));
    check_all(&b"/*!".repeat(10_000));
    check_all(&b"/*".repeat(10_000));
    check_all(&b"'".repeat(10_001));
    check_all(&b"IN (1, 2, (3, (4, ".repeat(10_000));
    let mut values = b"INSERT INTO t VALUES ".to_vec();
    values.extend_from_slice(&b"(1,'a'),".repeat(50_000));
    values.extend_from_slice(b"(2,'b')");
    assert_eq!(normalize(&values), "INSERT INTO T VALUES(?)");
}

/// Rebuilds `sql` from its tokens: each gap replaced by `seps[i]`, words in flipped case,
/// plain string literals replaced. The digest and the classification must not change.
fn respell(sql: &[u8], seps: &[&str], flip: &[bool]) -> Vec<u8> {
    use super::token::TokenKind;
    let mut out = Vec::new();
    for (i, t) in Tokenizer::new(sql).enumerate() {
        if i > 0 && t.gap_before {
            out.extend_from_slice(seps[i % seps.len()].as_bytes());
        }
        match t.kind {
            TokenKind::Word if flip[i % flip.len()] => out.extend(t.text.iter().map(|b| {
                if b.is_ascii_lowercase() {
                    b.to_ascii_uppercase()
                } else {
                    b.to_ascii_lowercase()
                }
            })),
            TokenKind::Str if t.text.first() == Some(&b'\'') && t.text.len() >= 2 && t.text.ends_with(b"'") => {
                out.extend_from_slice(b"'zz'")
            }
            _ => out.extend_from_slice(t.text),
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

    #[test]
    fn digest_and_kind_ignore_spacing_case_and_literals(
        pick in any::<prop::sample::Index>(),
        seps in prop::collection::vec(prop::sample::select(vec![" ", "\n", "\t", "  ", " /* c */ ", "\n# c\n", " -- c\n"]), 1..8),
        flip in prop::collection::vec(any::<bool>(), 1..8),
    ) {
        let corpus = corpus();
        let sql = corpus[pick.index(corpus.len())].as_bytes();
        let other = respell(sql, &seps, &flip);
        prop_assert_eq!(digest(sql), digest(&other), "{} vs {}", String::from_utf8_lossy(sql), String::from_utf8_lossy(&other));
        prop_assert_eq!(classify(sql), classify(&other), "{} vs {}", String::from_utf8_lossy(sql), String::from_utf8_lossy(&other));
    }
}
