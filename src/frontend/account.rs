//! Who a session is: the account it logged in as and the wire format it agreed on. Both
//! decide which backend pool serves it.

use super::handshake::Authenticated;
use crate::protocol::auth::{Credential, SCRAMBLE_BYTES};
use crate::protocol::CapabilityFlags;

/// The session's account and wire format.
#[derive(Debug, Clone)]
pub struct Account {
    /// Account name.
    pub user: String,
    /// What opens backend connections as this user.
    pub credential: Credential,
    /// Capabilities in effect: decide the wire format and the pool.
    pub capabilities: CapabilityFlags,
    /// Handshake collation (part of the pool key: the relay does not convert).
    pub collation: u8,
    /// Charset that `SET NAMES` returns to when a pooled connection must be reset.
    pub default_charset: String,
    /// The connection's nonce, reused by COM_CHANGE_USER.
    pub scramble: [u8; SCRAMBLE_BYTES],
}

impl Account {
    /// The account a finished handshake proved.
    pub fn new(auth: &Authenticated) -> Account {
        Account {
            user: auth.user.clone(),
            credential: auth.credential.clone(),
            capabilities: auth.capabilities,
            collation: auth.collation,
            default_charset: charset_of(auth.collation),
            scramble: auth.scramble,
        }
    }

    /// Switches to another handshake collation (COM_CHANGE_USER).
    pub fn set_collation(&mut self, collation: u8) {
        self.collation = collation;
        self.default_charset = charset_of(collation);
    }
}

/// The character set of a handshake collation id (`utf8mb4` for unknown ids).
pub fn charset_of(collation: u8) -> String {
    use mysql_common::collations::{Collation, CollationId};
    let c: Collation<'static> = CollationId::from(collation as u16).into();
    match c.charset() {
        "" => "utf8mb4".into(),
        cs => cs.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::charset_of;

    #[test]
    fn every_handshake_collation_has_a_charset() {
        assert_eq!(charset_of(8), "latin1");
        assert_eq!(charset_of(45), "utf8mb4");
        // Unknown ids (and MySQL 8's 255 on servers that lack it) must not panic.
        for id in 0..=255u8 {
            assert!(!charset_of(id).is_empty());
        }
    }
}
