//! Statement digest: the normalized statement text, or its 64-bit hash as a cache key.
//!
//! | input                                         | normalized                            |
//! |-----------------------------------------------|---------------------------------------|
//! | comments (plain, `#`, `-- `)                  | dropped                               |
//! | `/*! … */` version comments                   | their content, as SQL                 |
//! | hints `/*+ … */`, `/* shoal:… */`             | kept verbatim (they change routing)   |
//! | strings, numbers, `?`                         | `?`                                   |
//! | `(` literals, `,` … `)` e.g. `IN (1, 2, 3)`   | `(?)`; repeated `, (?)` tuples folded (`VALUES (?)`) |
//! | unquoted words (keywords and identifiers)     | upper-cased (ASCII)                   |
//! | `` `quoted` `` identifiers                    | verbatim                              |
//! | `@var`, `@@var`                               | upper-cased                           |
//! | whitespace                                    | one space between tokens, none after `(` `.` and before `)` `,` `.` `;` `(` (after a name) |
//! | `'u'@'h'` (account: `@` glued to the name)    | no space before `@` (so it differs from a variable) |
//!
//! Statements with the same normalized text classify the same (the corpus test checks it),
//! which makes the normalized text a sound cache key. Identifier case is folded:
//! classification never depends on it. `digest` is FNV-1a 64 over the normalized bytes,
//! computed without building the text: stable across processes (for statistics and logs),
//! but not collision-resistant, so `ClassifyCache` hashes the same bytes with a keyed
//! SipHash instead (a client must not be able to craft a write that collides with a
//! cached read).

use super::token::{Token, TokenKind, Tokenizer};

/// Receives normalized bytes.
pub(crate) trait Sink {
    fn put(&mut self, bytes: &[u8]);
    fn put_upper(&mut self, bytes: &[u8]);
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

struct Fnv(u64);

impl Sink for Fnv {
    fn put(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(FNV_PRIME);
        }
    }
    fn put_upper(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b.to_ascii_uppercase())).wrapping_mul(FNV_PRIME);
        }
    }
}

/// Feeds the normalized bytes to a `Hasher` (the cache's keyed SipHash) through a stack
/// buffer: one `write` per `HASH_BUFFER_BYTES` rather than one per token, which is what
/// keeps SipHash's per-call cost off the digest path.
pub(crate) struct HashSink<H: std::hash::Hasher> {
    hasher: H,
    buf: [u8; HASH_BUFFER_BYTES],
    len: usize,
}

/// Normalized bytes gathered before each `Hasher::write`.
const HASH_BUFFER_BYTES: usize = 256;

impl<H: std::hash::Hasher> HashSink<H> {
    pub(crate) fn new(hasher: H) -> Self {
        HashSink { hasher, buf: [0; HASH_BUFFER_BYTES], len: 0 }
    }

    /// The hash of everything put so far.
    pub(crate) fn finish(mut self) -> u64 {
        self.hasher.write(&self.buf[..self.len]);
        self.hasher.finish()
    }

    fn push(&mut self, b: u8) {
        if self.len == HASH_BUFFER_BYTES {
            self.hasher.write(&self.buf);
            self.len = 0;
        }
        self.buf[self.len] = b;
        self.len += 1;
    }
}

impl<H: std::hash::Hasher> Sink for HashSink<H> {
    fn put(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.push(b);
        }
    }
    fn put_upper(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.push(b.to_ascii_uppercase());
        }
    }
}

impl Sink for Vec<u8> {
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
    fn put_upper(&mut self, bytes: &[u8]) {
        self.extend(bytes.iter().map(u8::to_ascii_uppercase));
    }
}

/// 64-bit hash of `normalize(sql)`, computed without allocating.
pub fn digest(sql: &[u8]) -> u64 {
    let mut h = Fnv(FNV_OFFSET);
    emit(sql, &mut h);
    h.0
}

/// The normalized statement text (see the module table). Bytes that are not UTF-8 are
/// replaced (the text is for people; the digest hashes the raw bytes).
pub fn normalize(sql: &[u8]) -> String {
    let mut out = Vec::with_capacity(sql.len());
    emit(sql, &mut out);
    match String::from_utf8(out) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    }
}

fn is_literal(t: &Token<'_>) -> bool {
    matches!(t.kind, TokenKind::Str | TokenKind::Num | TokenKind::Param) || t.is_word(b"NULL")
}

/// When `toks` is just after a `(` that opens a list of literals only, the tokenizer
/// positioned after its `)`.
fn literal_group_end<'a>(toks: &Tokenizer<'a>) -> Option<Tokenizer<'a>> {
    let mut t = toks.clone();
    let mut literals = 0usize;
    loop {
        let tok = t.next()?;
        match tok.kind {
            _ if is_literal(&tok) => literals += 1,
            TokenKind::Punct if matches!(tok.text, b"," | b"-" | b"+") => {}
            TokenKind::Punct if tok.text == b")" => return (literals > 0).then_some(t),
            _ => return None,
        }
    }
}

pub(crate) fn emit(sql: &[u8], out: &mut impl Sink) {
    let mut toks = Tokenizer::new(sql);
    // Kind of the last emitted token: decides the space before the next one.
    let mut last: Option<(TokenKind, u8)> = None;
    let mut glue_ok = false;
    let mut last_was_group = false;
    while let Some(tok) = toks.next() {
        // Fold `, (?)` after a folded group: multi-row VALUES.
        if last_was_group && tok.is_punct(b",") {
            let mut look = toks.clone();
            if look.next().is_some_and(|t| t.is_punct(b"(")) {
                if let Some(end) = literal_group_end(&look) {
                    toks = end;
                    continue;
                }
            }
        }
        last_was_group = false;
        let first = tok.text.first().copied().unwrap_or(b' ');
        let space = match last {
            None => false,
            Some((_, b'(' | b'.')) => false,
            Some((TokenKind::Word | TokenKind::QuotedIdent, _)) if tok.is_punct(b"(") => false,
            _ if tok.kind == TokenKind::UserVar && !tok.gap_before && glue_ok => false,
            _ => !matches!(tok.kind, TokenKind::Punct | TokenKind::Semi) || !matches!(first, b')' | b',' | b'.' | b';'),
        };
        if space {
            out.put(b" ");
        }
        match tok.kind {
            TokenKind::Str | TokenKind::Num | TokenKind::Param => out.put(b"?"),
            TokenKind::Word | TokenKind::UserVar | TokenKind::SysVar => out.put_upper(tok.text),
            TokenKind::Punct if tok.text == b"(" => {
                if let Some(end) = literal_group_end(&toks) {
                    out.put(b"(?)");
                    toks = end;
                    last = Some((TokenKind::Punct, b')'));
                    glue_ok = false;
                    last_was_group = true;
                    continue;
                }
                out.put(tok.text);
            }
            _ => out.put(tok.text),
        }
        glue_ok = matches!(tok.kind, TokenKind::Word | TokenKind::Str | TokenKind::QuotedIdent);
        last = Some((tok.kind, if tok.kind == TokenKind::Punct { first } else { b' ' }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_literals_case_space_and_lists() {
        assert_eq!(
            normalize(b"select  *\n from t where id in (1, 2,3) and name='x' -- c"),
            "SELECT * FROM T WHERE ID IN(?) AND NAME = ?"
        );
        assert_eq!(
            normalize(b"INSERT INTO t (a,b) VALUES (1,'a'),(2,'b'), (3, NULL)"),
            "INSERT INTO T(A, B) VALUES(?)"
        );
        assert_eq!(normalize(b"SELECT f(1) /*+ BKA(t) */ FROM `T`.x"), "SELECT F(?) /*+ BKA(t) */ FROM `T`.X");
        assert_eq!(digest(b"select 1"), digest(b"SELECT   2"));
        assert_ne!(digest(b"select 1"), digest(b"select 1 for update"));
        assert_ne!(normalize(b"GRANT ALL ON *.* TO 'u'@'h'"), normalize(b"GRANT ALL ON *.* TO 'u' @'h'"));
    }
}
