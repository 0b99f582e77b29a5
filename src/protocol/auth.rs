//! `mysql_native_password` from the server's side, and re-scrambling for backends.
//!
//! The client proves it knows the password by sending
//! `token = SHA1(pw) XOR SHA1(scramble ‖ SHA1(SHA1(pw)))`. The server stores
//! `stage2 = SHA1(SHA1(pw))` (the `*HEX` hash in `mysql.user`). From a valid token the
//! server recovers `stage1 = SHA1(pw)`, and `stage1` is all it takes to answer any other
//! server's native-password scramble: that is how shoal opens backend connections with
//! the client's own credentials without ever seeing the plaintext.
//!
//! `caching_sha2_password` (MySQL 8's default client plugin) proves the password with
//! `token = SHA256(pw) XOR SHA256(SHA256(SHA256(pw)) ‖ scramble)`. A server can check that
//! only against `SHA256(SHA256(pw))`, which MariaDB's `mysql.user` does not hold, so the first
//! login of an account sends the password itself (over TLS, or RSA-encrypted) and shoal
//! keeps the digest it can then compute, next to the native credential ([`Sha2Digest`]);
//! later logins take the fast path. `frontend::sha2` has the exchange.

use sha1::{Digest, Sha1};
use sha2::Sha256;

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

/// Bytes in a SHA-256 digest.
pub const SHA256_BYTES: usize = 32;

/// `SHA256(SHA256(password))`: what a `caching_sha2_password` fast-path token is checked
/// against.
pub type Sha2Digest = [u8; SHA256_BYTES];

fn sha256(parts: &[&[u8]]) -> [u8; SHA256_BYTES] {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

/// The fast-path digest of a plaintext password.
pub fn sha2_digest(password: &[u8]) -> Sha2Digest {
    sha256(&[&sha256(&[password])])
}

/// Checks a `caching_sha2_password` token against the account's digest: recovers
/// `SHA256(pw)` from the token and hashes it.
pub fn sha2_verify(scramble: &[u8], digest: &Sha2Digest, token: &[u8]) -> bool {
    let Ok(token) = <&[u8; SHA256_BYTES]>::try_from(token) else { return false };
    let mask = sha256(&[digest, scramble]);
    let stage1: [u8; SHA256_BYTES] = std::array::from_fn(|i| token[i] ^ mask[i]);
    sha256(&[&stage1]) == *digest
}

/// The password inside an RSA-decrypted full-authentication packet: clients XOR
/// `password ‖ NUL` with the scramble (repeated) before encrypting it. `None` when the
/// result is not NUL-terminated (a wrong key or a garbled packet).
pub fn unmask_password(decrypted: &[u8], scramble: &[u8]) -> Option<Vec<u8>> {
    if scramble.is_empty() {
        return None;
    }
    let mut plain: Vec<u8> = decrypted.iter().zip(scramble.iter().cycle()).map(|(b, s)| b ^ s).collect();
    (plain.pop() == Some(0)).then_some(plain)
}

/// Checks a plaintext password against an account's stored native hashes; on success
/// returns the credential for backend logins.
pub fn verify_password(stored: &[Option<[u8; SCRAMBLE_BYTES]>], password: &[u8]) -> Option<Credential> {
    let credential = Credential::from_password(password);
    let stage2 = credential.stage2();
    stored.contains(&stage2).then_some(credential)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha2_tokens_match_mysql_common_client_scramble() {
        let scramble = *b"abcdefghijklmnopqrst";
        let client = mysql_common::scramble::scramble_sha256(&scramble, b"secret").unwrap();
        let digest = sha2_digest(b"secret");
        assert!(sha2_verify(&scramble, &digest, &client));
        assert!(!sha2_verify(b"zyxwvutsrqponmlkjihg", &digest, &client), "another scramble");
        assert!(!sha2_verify(&scramble, &sha2_digest(b"other"), &client), "another password");
        assert!(!sha2_verify(&scramble, &digest, &client[..31]), "short token");
        assert!(!sha2_verify(&scramble, &digest, &[]), "empty token");
    }

    #[test]
    fn masked_passwords_unmask_and_garbage_does_not() {
        let scramble = b"0123456789abcdefghij";
        let long = b"a password longer than the twenty-byte scramble";
        for pw in [&b"secret"[..], &long[..], &b""[..]] {
            let mut masked: Vec<u8> = pw.to_vec();
            masked.push(0);
            let masked: Vec<u8> = masked.iter().zip(scramble.iter().cycle()).map(|(b, s)| b ^ s).collect();
            assert_eq!(unmask_password(&masked, scramble).as_deref(), Some(pw));
        }
        assert_eq!(unmask_password(b"xyz", scramble), None, "not NUL-terminated once unmasked");
        assert_eq!(unmask_password(b"", scramble), None);
        assert_eq!(unmask_password(b"a", b""), None);
    }

    #[test]
    fn plaintext_passwords_check_against_native_hashes() {
        let secret = Credential::from_password(b"secret").stage2();
        assert_eq!(verify_password(&[secret], b"secret"), Some(Credential::from_password(b"secret")));
        assert_eq!(verify_password(&[secret], b"wrong"), None);
        assert_eq!(verify_password(&[None, secret], b"secret"), Some(Credential::from_password(b"secret")));
        assert_eq!(verify_password(&[None], b""), Some(Credential::Empty));
        assert_eq!(verify_password(&[secret], b""), None);
        assert_eq!(verify_password(&[], b"secret"), None);
    }

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
