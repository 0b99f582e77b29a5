//! The accounts shoal authenticates clients against: `[users]` from the config, plus the
//! native-password hashes in the backend's `mysql.user`, read with a service account and
//! re-read (at most once per `RELOAD_INTERVAL_MIN`) when a login does not match.
//!
//! Accounts with another plugin (`ed25519`, `pam`, `gssapi`, …) are remembered by plugin:
//! shoal cannot check their proofs or open connections for them, so their logins are
//! relayed to the server (see `BackendConn::relay_login`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use mysql_async::prelude::Queryable;

use super::tls::BackendTls;
use crate::protocol::auth::{
    parse_stored_hash, sha2_digest, sha2_verify, verify, verify_password, Credential, Sha2Digest,
};

/// Shortest time between two reloads from the backend (a storm of bad logins must not
/// become a storm of queries).
pub const RELOAD_INTERVAL_MIN: Duration = Duration::from_secs(1);

/// Accounts whose `caching_sha2_password` digest is kept for the fast path; past this the
/// cache starts over (every account then does one full authentication again).
pub const SHA2_CACHE_ENTRIES_MAX: usize = 65_536;

/// A stored password: `None` is the empty password.
pub type Stage2 = Option<[u8; 20]>;

/// How to reach the backend's account table.
#[derive(Debug, Clone)]
pub struct ServiceAccount {
    /// host:port of the primary.
    pub addr: String,
    /// Account with SELECT on `mysql.user` (or `mysql.global_priv`).
    pub user: String,
    /// Its password.
    pub password: String,
    /// `[backends] tls`: the service account's connections are encrypted like the pools'.
    pub tls: Arc<BackendTls>,
}

/// Accounts by name.
pub struct Users {
    /// From the config file; these win over the backend's.
    fixed: HashMap<String, Vec<Stage2>>,
    /// From the backend, swapped whole on reload.
    loaded: ArcSwap<HashMap<String, Vec<Stage2>>>,
    /// Accounts of the backend that only have other plugins, with the plugin.
    relayed: ArcSwap<HashMap<String, String>>,
    service: Option<ServiceAccount>,
    last_reload: Mutex<Option<Instant>>,
    /// Held while a reload runs: a login that finds no match waits for a reload in flight
    /// (which may bring its account, just created) before it is refused.
    reloading: tokio::sync::Mutex<()>,
    /// `caching_sha2_password` fast path: the digest of each account's password, learnt
    /// at its last full authentication, with the credential that password gave.
    sha2_cache: Mutex<HashMap<String, (Sha2Digest, Credential)>>,
}

impl Users {
    /// A directory with fixed accounts and an optional service account to load others.
    pub fn new(fixed: HashMap<String, Vec<Stage2>>, service: Option<ServiceAccount>) -> Self {
        Users {
            fixed,
            loaded: ArcSwap::from_pointee(HashMap::new()),
            relayed: ArcSwap::from_pointee(HashMap::new()),
            service,
            last_reload: Mutex::new(None),
            reloading: tokio::sync::Mutex::new(()),
            sha2_cache: Mutex::new(HashMap::new()),
        }
    }

    /// The service account, if configured.
    pub fn service(&self) -> Option<&ServiceAccount> {
        self.service.as_ref()
    }

    /// The plugin of an account whose logins shoal relays to the server (no native
    /// password known for it); reloads once for an account not known at all.
    pub async fn relayed_plugin(&self, user: &str) -> Option<String> {
        let known = |u: &Users| u.fixed.contains_key(user) || u.loaded.load().contains_key(user);
        if known(self) {
            return None;
        }
        if let Some(p) = self.relayed.load().get(user) {
            return Some(p.clone());
        }
        self.reload_if_allowed().await;
        if known(self) {
            return None;
        }
        self.relayed.load().get(user).cloned()
    }

    /// Waits for a reload in flight, then reloads unless one ran within
    /// [`RELOAD_INTERVAL_MIN`] (the one waited for counts). Before, a login that raced a
    /// reload another login had started was refused (1045) for an account that reload was
    /// bringing: an application opening a pool right after `CREATE USER` saw dozens.
    async fn reload_if_allowed(&self) {
        let _one_at_a_time = self.reloading.lock().await;
        if self.reload_allowed() {
            if let Err(e) = self.reload().await {
                tracing::warn!(error = %e, "could not reload accounts from the backend");
            }
        }
    }

    /// Checks a native-password token; reloads from the backend once if nothing matched.
    pub async fn authenticate(&self, user: &str, scramble: &[u8], token: &[u8]) -> Option<Credential> {
        self.check(user, |stored| stored.iter().find_map(|s| verify(scramble, s.as_ref(), token))).await
    }

    /// `caching_sha2_password` full authentication: checks the password itself against
    /// the account's native hashes (reloading once if nothing matched) and, when it matches,
    /// keeps its digest for the fast path ([`Users::sha2_fast`]).
    pub async fn authenticate_password(&self, user: &str, password: &[u8]) -> Option<Credential> {
        let credential = self.check(user, |stored| verify_password(stored, password)).await?;
        let mut cache = self.sha2_cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= SHA2_CACHE_ENTRIES_MAX && !cache.contains_key(user) {
            cache.clear();
        }
        cache.insert(user.to_string(), (sha2_digest(password), credential.clone()));
        Some(credential)
    }

    /// `caching_sha2_password` fast path: the token checked against the digest cached at
    /// the account's last full authentication. An entry whose credential the account no
    /// longer has (its password changed) does not count.
    pub fn sha2_fast(&self, user: &str, scramble: &[u8], token: &[u8]) -> Option<Credential> {
        let (digest, credential) = self.sha2_cache.lock().unwrap_or_else(|p| p.into_inner()).get(user).cloned()?;
        if !sha2_verify(scramble, &digest, token) {
            return None;
        }
        let stage2 = credential.stage2();
        self.with_stored(user, |stored| stored.contains(&stage2)).unwrap_or(false).then_some(credential)
    }

    /// `proof` over the account's stored passwords; when nothing matches, reloads from
    /// the backend once (at most every [`RELOAD_INTERVAL_MIN`]) and tries again.
    async fn check(&self, user: &str, proof: impl Fn(&[Stage2]) -> Option<Credential>) -> Option<Credential> {
        if let Some(c) = self.with_stored(user, &proof).flatten() {
            return Some(c);
        }
        self.reload_if_allowed().await;
        self.with_stored(user, &proof).flatten()
    }

    /// `f` over the account's stored passwords (`[users]` first, then the backend's);
    /// `None` for an unknown account.
    fn with_stored<T>(&self, user: &str, f: impl FnOnce(&[Stage2]) -> T) -> Option<T> {
        let loaded = self.loaded.load();
        self.fixed.get(user).or_else(|| loaded.get(user)).map(|stored| f(stored))
    }

    fn reload_allowed(&self) -> bool {
        if self.service.is_none() {
            return false;
        }
        let mut last = self.last_reload.lock().unwrap_or_else(|p| p.into_inner());
        match *last {
            Some(t) if t.elapsed() < RELOAD_INTERVAL_MIN => false,
            _ => {
                *last = Some(Instant::now());
                true
            }
        }
    }

    /// Reads `mysql.user` now.
    pub async fn reload(&self) -> Result<usize, mysql_async::Error> {
        let Some(svc) = &self.service else { return Ok(0) };
        let mut conn = mysql_async::Conn::new(client_opts(&svc.addr, &svc.user, &svc.password, &svc.tls)).await?;
        let rows: Vec<(String, String, String, String)> =
            conn.query("SELECT User, plugin, authentication_string, Password FROM mysql.user").await?;
        conn.disconnect().await?;
        let mut map: HashMap<String, Vec<Stage2>> = HashMap::new();
        let mut relayed: HashMap<String, String> = HashMap::new();
        for (user, plugin, auth, password) in rows {
            match stored_password(&plugin, &auth, &password) {
                Some(stage2) => map.entry(user).or_default().push(stage2),
                None => {
                    relayed.entry(user).or_insert(plugin);
                }
            }
        }
        relayed.retain(|u, _| !map.contains_key(u));
        let n = map.len() + relayed.len();
        self.loaded.store(Arc::new(map));
        self.relayed.store(Arc::new(relayed));
        tracing::info!(accounts = n, "loaded accounts from the backend");
        Ok(n)
    }
}

/// mysql_async options for a service-account connection to `host:port` or `unix:/path`,
/// with `[backends] tls` (TCP only: a unix socket stays plain, as in [`super::tls`]).
pub fn client_opts(addr: &str, user: &str, password: &str, tls: &BackendTls) -> mysql_async::OptsBuilder {
    let b = mysql_async::OptsBuilder::default().user(Some(user)).pass(Some(password)).prefer_socket(false);
    match crate::config::unix_path(addr) {
        Some(path) => b.socket(Some(path)),
        None => {
            let port = addr.rsplit_once(':').map_or("3306", |(_, p)| p);
            let host = super::tls::host_of(addr);
            b.ip_or_hostname(host.to_string()).tcp_port(port.parse().unwrap_or(3306)).ssl_opts(tls.ssl_opts())
        }
    }
}

/// The stored password of a `mysql.user` row, if shoal can verify it: native password
/// accounts only (`*HEX` hash, or empty).
pub fn stored_password(plugin: &str, auth: &str, password: &str) -> Option<Stage2> {
    if !(plugin.is_empty() || plugin == "mysql_native_password") {
        return None;
    }
    let hash = if auth.is_empty() { password } else { auth };
    if hash.is_empty() {
        return Some(None);
    }
    parse_stored_hash(hash).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_native_rows_count() {
        let h = "*14E65567ABDB5135D0CFD9A70B3032C179A49EE7";
        assert!(matches!(stored_password("mysql_native_password", h, ""), Some(Some(_))));
        assert_eq!(stored_password("", "", ""), Some(None));
        assert_eq!(stored_password("mysql_native_password", "invalid", ""), None);
        assert_eq!(stored_password("unix_socket", "", ""), None);
        assert_eq!(stored_password("ed25519", "abc", ""), None);
    }
}
