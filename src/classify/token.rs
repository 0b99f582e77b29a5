//! A zero-copy tokenizer over statement bytes.
//!
//! Tokens are slices of the input. The bytes need not be UTF-8: every decision is made on
//! ASCII bytes, and bytes >= 0x80 count as identifier characters (MySQL allows them in
//! unquoted identifiers). Every index is bounds-checked, so no input panics or reads past
//! its end; an unterminated string, identifier or comment runs to the end of the input.
//!
//! | input                         | result                                                  |
//! |-------------------------------|---------------------------------------------------------|
//! | `# …` , `-- …` (dash dash + space/control/end) | skipped to end of line                 |
//! | `/* … */`                     | skipped                                                 |
//! | `/*!NNNNN … */`, `/*M!NNNNNN … */` | content tokenized as SQL (any version: the servers we front execute it) |
//! | `/*+ … */`                    | one `Hint` token (optimizer hint)                       |
//! | `/* shoal:… */`               | one `Hint` token (shoal hint, e.g. `shoal:leader`)      |
//! | `'…'`, `"…"`                  | `Str` (`\` escapes and doubled quotes; `"` as string: ANSI_QUOTES is not assumed) |
//! | `x'…'`, `b'…'`, `n'…'`, `_charset'…'` | `Str` (prefix included)                         |
//! | `` `…` ``                     | `QuotedIdent` (doubled backquote escapes)               |
//! | `@name`, `@'…'`, `` @`…` ``   | `UserVar`                                               |
//! | `@@[scope.]name`              | `SysVar`                                                |
//! | `?`                           | `Param`                                                 |
//! | `;`                           | `Semi` (statement boundary)                             |
//! | digits, `.5`, `1e3`, `0x1F`, `0b101` | `Num` (digits glued to letters make a `Word`: `1abc`) |
//! | letters, digits, `_`, `$`, bytes >= 0x80 | `Word` (keyword or identifier)               |
//! | anything else                 | `Punct` (`:=`, `<=>`, `->>`, `<=`, `!=`, … kept whole) |

/// What a token is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// Unquoted keyword or identifier.
    Word,
    /// `` `identifier` ``.
    QuotedIdent,
    /// String literal (including hex/bit/national/charset-introduced forms).
    Str,
    /// Numeric literal.
    Num,
    /// `@user_variable`.
    UserVar,
    /// `@@system_variable`.
    SysVar,
    /// `?` placeholder.
    Param,
    /// `/*+ … */` optimizer hint or `/* shoal:… */` shoal hint (whole comment).
    Hint,
    /// Operator or punctuation.
    Punct,
    /// `;`.
    Semi,
}

/// One token: a slice of the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Token<'a> {
    /// What the token is.
    pub kind: TokenKind,
    /// The token's bytes (quotes and prefixes included).
    pub text: &'a [u8],
    /// Offset of the token in the input.
    pub start: usize,
    /// Whitespace or a comment separates this token from the previous one (or it is first).
    pub gap_before: bool,
}

impl Token<'_> {
    /// True for a `Word` equal to `kw` ignoring ASCII case (`kw` is given upper-case).
    pub fn is_word(&self, kw: &[u8]) -> bool {
        self.kind == TokenKind::Word && self.text.eq_ignore_ascii_case(kw)
    }
    /// True for the punctuation `p`.
    pub fn is_punct(&self, p: &[u8]) -> bool {
        self.kind == TokenKind::Punct && self.text == p
    }
}

/// Multi-byte operators kept as one token, longest first.
const OPERATORS: [&[u8]; 12] = [b"<=>", b"->>", b":=", b"<=", b">=", b"<>", b"!=", b"||", b"&&", b"<<", b">>", b"->"];

/// Iterator over the tokens of a statement text. Cheap to clone (for lookahead).
#[derive(Debug, Clone)]
pub struct Tokenizer<'a> {
    src: &'a [u8],
    pos: usize,
    /// Inside `/*! … */`: the next `*/` closes it rather than being two punctuation tokens.
    in_version_comment: bool,
}

/// Byte class bits, looked up in `CLASSES` (one load instead of a chain of compares).
const WORD: u8 = 1;
const SPACE: u8 = 2;

/// Class of every byte value.
static CLASSES: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut b = 0usize;
    while b < 256 {
        let c = b as u8;
        if c.is_ascii_alphanumeric() || c == b'_' || c == b'$' || c >= 0x80 {
            t[b] = WORD;
        } else if matches!(c, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c) {
            t[b] = SPACE;
        }
        b += 1;
    }
    t
};

/// Bytes that make up unquoted identifiers.
pub fn is_word_byte(b: u8) -> bool {
    CLASSES[b as usize] & WORD != 0
}

fn is_space_byte(b: u8) -> bool {
    CLASSES[b as usize] & SPACE != 0
}

impl<'a> Tokenizer<'a> {
    /// Tokenizes `src` from its start.
    pub fn new(src: &'a [u8]) -> Self {
        Tokenizer { src, pos: 0, in_version_comment: false }
    }

    /// Offset of the next unread byte.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// The whole input.
    pub fn source(&self) -> &'a [u8] {
        self.src
    }

    fn at(&self, i: usize) -> Option<u8> {
        self.src.get(i).copied()
    }

    /// Offset just past the `*/` that closes a comment whose body starts at `from`, or the
    /// end of the input when it is unterminated.
    fn comment_end(&self, from: usize) -> usize {
        let mut i = from;
        while i + 1 < self.src.len() {
            if self.src[i] == b'*' && self.src[i + 1] == b'/' {
                return i + 2;
            }
            i += 1;
        }
        self.src.len()
    }

    /// Offset just past a quoted run starting at `self.pos` with quote byte `q`.
    fn quoted_end(&self, from: usize, q: u8, backslash: bool) -> usize {
        let mut i = from + 1;
        while i < self.src.len() {
            let b = self.src[i];
            if backslash && b == b'\\' {
                i += 2;
            } else if b == q {
                if self.at(i + 1) == Some(q) {
                    i += 2;
                } else {
                    return i + 1;
                }
            } else {
                i += 1;
            }
        }
        self.src.len()
    }

    fn word_end(&self, from: usize) -> usize {
        let mut i = from;
        while i < self.src.len() && is_word_byte(self.src[i]) {
            i += 1;
        }
        i
    }

    fn digits_end(&self, from: usize, hex: bool) -> usize {
        let mut i = from;
        while i < self.src.len() && (self.src[i].is_ascii_digit() || (hex && self.src[i].is_ascii_hexdigit())) {
            i += 1;
        }
        i
    }

    /// Offset past a numeric literal starting at `from` (a digit or `.digit`).
    fn number_end(&self, from: usize) -> usize {
        let src = self.src;
        if src[from] == b'0' && matches!(self.at(from + 1), Some(b'x' | b'X' | b'b' | b'B')) {
            let hex = matches!(self.at(from + 1), Some(b'x' | b'X'));
            let end = self.digits_end(from + 2, hex);
            if end > from + 2 {
                return end;
            }
        }
        let mut i = self.digits_end(from, false);
        if self.at(i) == Some(b'.') {
            i = self.digits_end(i + 1, false);
        }
        if matches!(self.at(i), Some(b'e' | b'E')) {
            let mut j = i + 1;
            if matches!(self.at(j), Some(b'+' | b'-')) {
                j += 1;
            }
            let k = self.digits_end(j, false);
            if k > j {
                i = k;
            }
        }
        i
    }

    /// A word at `start`, or a prefixed string literal (`x'…'`, `_utf8mb4'…'`).
    fn word(&mut self, start: usize, gap: bool) -> Token<'a> {
        let src = self.src;
        let end = self.word_end(start);
        let word = &src[start..end];
        let prefix_literal = (word.len() == 1 && matches!(word[0], b'x' | b'X' | b'b' | b'B' | b'n' | b'N'))
            || (word[0] == b'_' && word.len() > 1);
        match self.at(end) {
            Some(q @ (b'\'' | b'"')) if prefix_literal && (q == b'\'' || word[0] == b'_') => {
                let end = self.quoted_end(end, q, true);
                self.token(TokenKind::Str, start, end, gap)
            }
            _ => self.token(TokenKind::Word, start, end, gap),
        }
    }

    fn token(&mut self, kind: TokenKind, start: usize, end: usize, gap: bool) -> Token<'a> {
        let end = end.min(self.src.len());
        self.pos = end;
        Token { kind, text: &self.src[start..end], start, gap_before: gap }
    }
}

/// True when a plain comment body is a shoal hint (`/* shoal:leader */`).
fn is_shoal_comment(body: &[u8]) -> bool {
    let trimmed = body.iter().position(|b| !b.is_ascii_whitespace()).map_or(&[][..], |i| &body[i..]);
    trimmed.len() >= 6 && trimmed[..6].eq_ignore_ascii_case(b"shoal:")
}

impl<'a> Iterator for Tokenizer<'a> {
    type Item = Token<'a>;

    fn next(&mut self) -> Option<Token<'a>> {
        let src = self.src;
        let mut gap = self.pos == 0;
        loop {
            while self.pos < src.len() && is_space_byte(src[self.pos]) {
                self.pos += 1;
                gap = true;
            }
            let start = self.pos;
            let c = *src.get(start)?;
            if is_word_byte(c) && !c.is_ascii_digit() {
                // Words first: the most common token.
                return Some(self.word(start, gap));
            }
            let next = self.at(start + 1);
            match c {
                b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c => {
                    self.pos += 1;
                    gap = true;
                }
                b'#' => {
                    self.pos = src[start..].iter().position(|&b| b == b'\n').map_or(src.len(), |i| start + i + 1);
                    gap = true;
                }
                b'-' if next == Some(b'-') && self.at(start + 2).is_none_or(|b| b <= b' ') => {
                    self.pos = src[start..].iter().position(|&b| b == b'\n').map_or(src.len(), |i| start + i + 1);
                    gap = true;
                }
                b'/' if next == Some(b'*') => {
                    let third = self.at(start + 2);
                    let version_skip = match (third, self.at(start + 3)) {
                        (Some(b'!'), _) => Some(3),
                        (Some(b'M' | b'm'), Some(b'!')) => Some(4),
                        _ => None,
                    };
                    if let Some(skip) = version_skip {
                        self.pos = self.digits_end(start + skip, false);
                        self.in_version_comment = true;
                        gap = true;
                        continue;
                    }
                    let end = self.comment_end(start + 2);
                    if third == Some(b'+') {
                        return Some(self.token(TokenKind::Hint, start, end, gap));
                    }
                    let body_end = if end >= start + 4 && src.get(end - 2..end) == Some(b"*/") { end - 2 } else { end };
                    let body = src.get(start + 2..body_end).unwrap_or(&[]);
                    if is_shoal_comment(body) {
                        return Some(self.token(TokenKind::Hint, start, end, gap));
                    }
                    self.pos = end;
                    gap = true;
                }
                b'*' if next == Some(b'/') && self.in_version_comment => {
                    self.pos += 2;
                    self.in_version_comment = false;
                    gap = true;
                }
                b'\'' | b'"' => {
                    let end = self.quoted_end(start, c, true);
                    return Some(self.token(TokenKind::Str, start, end, gap));
                }
                b'`' => {
                    let end = self.quoted_end(start, c, false);
                    return Some(self.token(TokenKind::QuotedIdent, start, end, gap));
                }
                b'@' => {
                    if next == Some(b'@') {
                        let mut i = start + 2;
                        while i < src.len() && (is_word_byte(src[i]) || src[i] == b'.') {
                            i += 1;
                        }
                        if self.at(i) == Some(b'`') {
                            i = self.quoted_end(i, b'`', false);
                        }
                        return Some(self.token(TokenKind::SysVar, start, i, gap));
                    }
                    let end = match next {
                        Some(q @ (b'\'' | b'"' | b'`')) => self.quoted_end(start + 1, q, q != b'`'),
                        Some(b) if is_word_byte(b) || b == b'.' => {
                            let mut i = start + 1;
                            while i < src.len() && (is_word_byte(src[i]) || src[i] == b'.') {
                                i += 1;
                            }
                            i
                        }
                        _ => return Some(self.token(TokenKind::Punct, start, start + 1, gap)),
                    };
                    return Some(self.token(TokenKind::UserVar, start, end, gap));
                }
                b'?' => return Some(self.token(TokenKind::Param, start, start + 1, gap)),
                b';' => return Some(self.token(TokenKind::Semi, start, start + 1, gap)),
                b'0'..=b'9' => {
                    let end = self.number_end(start);
                    if self.at(end).is_some_and(is_word_byte) {
                        let end = self.word_end(end);
                        return Some(self.token(TokenKind::Word, start, end, gap));
                    }
                    return Some(self.token(TokenKind::Num, start, end, gap));
                }
                b'.' if next.is_some_and(|b| b.is_ascii_digit())
                    && !(start > 0 && (is_word_byte(src[start - 1]) || src[start - 1] == b'`')) =>
                {
                    let end = self.number_end(start);
                    return Some(self.token(TokenKind::Num, start, end, gap));
                }
                _ => {
                    let rest = &src[start..];
                    let len = OPERATORS.iter().find(|op| rest.starts_with(op)).map_or(1, |op| op.len());
                    return Some(self.token(TokenKind::Punct, start, start + len, gap));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(sql: &str) -> Vec<(TokenKind, String)> {
        Tokenizer::new(sql.as_bytes()).map(|t| (t.kind, String::from_utf8_lossy(t.text).into_owned())).collect()
    }

    #[test]
    fn comments_strings_and_version_comments() {
        use TokenKind::*;
        let got = kinds("/*!40101 SET NAMES utf8 */; -- hi\n# x\nSELECT 'a\\'b''c', `x``y`, @v, @@session.x /* c */ ?");
        let want = vec![
            (Word, "SET".into()),
            (Word, "NAMES".into()),
            (Word, "utf8".into()),
            (Semi, ";".into()),
            (Word, "SELECT".into()),
            (Str, "'a\\'b''c'".into()),
            (Punct, ",".into()),
            (QuotedIdent, "`x``y`".into()),
            (Punct, ",".into()),
            (UserVar, "@v".into()),
            (Punct, ",".into()),
            (SysVar, "@@session.x".into()),
            (Param, "?".into()),
        ];
        assert_eq!(got, want);
    }

    #[test]
    fn hints_numbers_and_operators() {
        use TokenKind::*;
        let got =
            kinds("SELECT /*+ MAX_EXECUTION_TIME(1) */ 1.5e3, .5, 0x1F, 1abc, x'0A', a<=>b, a--1 /* shoal:leader */");
        let want = vec![
            (Word, "SELECT".into()),
            (Hint, "/*+ MAX_EXECUTION_TIME(1) */".into()),
            (Num, "1.5e3".into()),
            (Punct, ",".into()),
            (Num, ".5".into()),
            (Punct, ",".into()),
            (Num, "0x1F".into()),
            (Punct, ",".into()),
            (Word, "1abc".into()),
            (Punct, ",".into()),
            (Str, "x'0A'".into()),
            (Punct, ",".into()),
            (Word, "a".into()),
            (Punct, "<=>".into()),
            (Word, "b".into()),
            (Punct, ",".into()),
            (Word, "a".into()),
            (Punct, "-".into()),
            (Punct, "-".into()),
            (Num, "1".into()),
            (Hint, "/* shoal:leader */".into()),
        ];
        assert_eq!(got, want);
    }

    #[test]
    fn unterminated_runs_to_end() {
        for sql in ["'abc", "`abc", "/* abc", "/*!5000", "'a\\", "@'x", "@@", "@", "x'", "0x", "--", "-- x"] {
            let toks: Vec<_> = Tokenizer::new(sql.as_bytes()).collect();
            let total: usize = toks.iter().map(|t| t.text.len()).sum();
            assert!(total <= sql.len(), "{sql}");
        }
    }
}
