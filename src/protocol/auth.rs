//! `mysql_native_password` from the server's side, and re-scrambling for backends.
//!
//! The client proves it knows the password by sending
//! `token = SHA1(pw) XOR SHA1(scramble ‖ SHA1(SHA1(pw)))`. The server stores
//! `stage2 = SHA1(SHA1(pw))` (the `*HEX` hash in `mysql.user`). From a valid token the
//! server recovers `stage1 = SHA1(pw)`, and `stage1` is all it takes to answer any other
//! server's native-password scramble: that is how shoal opens backend connections with
//! the client's own credentials without ever seeing the plaintext.

use sha1::{Digest, Sha1};

/// Bytes in a scramble (nonce) and in a SHA1 digest.
pub const SCRAMBLE_BYTES: usize = 20;

/// The proof of password a backend login needs.
#[derive(Clone, PartialEq, Eq)]
pub enum Credential {
    /// The account has an empty password.
    Empty,
    /// `SHA1(password)`, recovered from a client's token or computed from a configured
    /// password.
    Stage1([u8; SCRAMBLE_BYTES]),
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print secrets.
        f.write_str(match self {
            Credential::Empty => "Credential::Empty",
            Credential::Stage1(_) => "Credential::Stage1(..)",
        })
    }
}

impl Credential {
    /// The credential of a plaintext password.
    pub fn from_password(password: &[u8]) -> Self {
        if password.is_empty() {
            Credential::Empty
        } else {
            Credential::Stage1(sha1(&[password]))
        }
    }

    /// The auth response for a server's scramble.
    pub fn token(&self, scramble: &[u8]) -> Vec<u8> {
        match self {
            Credential::Empty => Vec::new(),
            Credential::Stage1(stage1) => token_from_stage1(scramble, stage1).to_vec(),
        }
    }

    /// The stored hash (`SHA1(SHA1(pw))`) this credential matches, `None` when empty.
    pub fn stage2(&self) -> Option<[u8; SCRAMBLE_BYTES]> {
        match self {
            Credential::Empty => None,
            Credential::Stage1(s1) => Some(sha1(&[s1])),
        }
    }
}

fn sha1(parts: &[&[u8]]) -> [u8; SCRAMBLE_BYTES] {
    let mut h = Sha1::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

fn xor(a: &[u8; SCRAMBLE_BYTES], b: &[u8; SCRAMBLE_BYTES]) -> [u8; SCRAMBLE_BYTES] {
    std::array::from_fn(|i| a[i] ^ b[i])
}

/// `SHA1(pw) XOR SHA1(scramble ‖ SHA1(SHA1(pw)))` from `stage1 = SHA1(pw)`.
pub fn token_from_stage1(scramble: &[u8], stage1: &[u8; SCRAMBLE_BYTES]) -> [u8; SCRAMBLE_BYTES] {
    let stage2 = sha1(&[stage1]);
    xor(stage1, &sha1(&[scramble, &stage2]))
}

/// Parses a stored native-password hash: `*` followed by 40 hex digits.
pub fn parse_stored_hash(s: &str) -> Option<[u8; SCRAMBLE_BYTES]> {
    let hex = s.strip_prefix('*')?.as_bytes();
    if hex.len() != 2 * SCRAMBLE_BYTES {
        return None;
    }
    let digit = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let mut out = [0u8; SCRAMBLE_BYTES];
    for (i, pair) in hex.chunks(2).enumerate() {
        out[i] = digit(pair[0])? << 4 | digit(pair[1])?;
    }
    Some(out)
}

/// Checks a client's token against a stored `stage2`; on success returns the credential
/// to use for backend logins.
pub fn verify(scramble: &[u8], stage2: Option<&[u8; SCRAMBLE_BYTES]>, token: &[u8]) -> Option<Credential> {
    match stage2 {
        None => token.is_empty().then_some(Credential::Empty),
        Some(stage2) => {
            let token: &[u8; SCRAMBLE_BYTES] = token.try_into().ok()?;
            let stage1 = xor(token, &sha1(&[scramble, stage2]));
            (sha1(&[&stage1]) == *stage2).then_some(Credential::Stage1(stage1))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_mysql_common_client_scramble() {
        let scramble = *b"abcdefghijklmnopqrst";
        let client = mysql_common::scramble::scramble_native(&scramble, b"secret").unwrap();
        let cred = Credential::from_password(b"secret");
        assert_eq!(cred.token(&scramble), client.to_vec());
        let stage2 = cred.stage2().unwrap();
        assert_eq!(verify(&scramble, Some(&stage2), &client), Some(cred.clone()));
        // The recovered credential answers a different scramble like the password would.
        let other = *b"zyxwvutsrqponmlkjihg";
        let again = mysql_common::scramble::scramble_native(&other, b"secret").unwrap();
        assert_eq!(cred.token(&other), again.to_vec());
    }

    #[test]
    fn wrong_password_and_bad_lengths_fail() {
        let scramble = [7u8; 20];
        let stage2 = Credential::from_password(b"right").stage2().unwrap();
        let wrong = mysql_common::scramble::scramble_native(&scramble, b"wrong").unwrap();
        assert_eq!(verify(&scramble, Some(&stage2), &wrong), None);
        assert_eq!(verify(&scramble, Some(&stage2), &[]), None);
        assert_eq!(verify(&scramble, Some(&stage2), &[1, 2, 3]), None);
        assert_eq!(verify(&scramble, None, &[1]), None);
        assert_eq!(verify(&scramble, None, &[]), Some(Credential::Empty));
    }

    #[test]
    fn stored_hash_parses() {
        // SELECT PASSWORD('secret') on MariaDB.
        let h = parse_stored_hash("*14E65567ABDB5135D0CFD9A70B3032C179A49EE7").unwrap();
        assert_eq!(Some(h), Credential::from_password(b"secret").stage2());
        assert_eq!(parse_stored_hash("14E6"), None);
        assert_eq!(parse_stored_hash("*ZZE65567ABDB5135D0CFD9A70B3032C179A49EE7"), None);
    }
}
