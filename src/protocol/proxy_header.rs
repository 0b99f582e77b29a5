//! PROXY protocol (HAProxy's v1 text and v2 binary headers) in front of the MySQL
//! handshake: a load balancer tells shoal the real client address, which authentication
//! errors, `SHOW PROCESSLIST`, `KILL`, logs and metrics then show.
//!
//! As in MariaDB (`proxy_protocol_networks`), the header is optional and accepted only
//! from trusted networks; shoal sends its greeting first and looks at the first bytes the
//! client sends (a MySQL client's first packet can never start with either signature).
//!
//! | first bytes from the client | peer trusted | outcome |
//! |---|---|---|
//! | a complete v1/v2 header | yes | the header's source address is the client's; the handshake goes on |
//! | a v1/v2 `LOCAL`/`UNKNOWN` header | yes | the peer's own address stays; the handshake goes on |
//! | a header | no | refused: `Proxy header is not accepted from <peer>` |
//! | a broken header, or one over [`HEADER_BYTES_MAX`] | any | refused |
//! | anything else | any | no header: the handshake goes on |

use std::net::{IpAddr, SocketAddr};

/// v1's signature.
const V1_SIGNATURE: &[u8] = b"PROXY ";
/// v2's signature.
const V2_SIGNATURE: &[u8] = b"\r\n\r\n\0\r\nQUIT\n";
/// Longest header accepted (v1 is at most 107 bytes; v2 carries TLVs after the addresses).
pub const HEADER_BYTES_MAX: usize = 4096;

/// What the first bytes from a client are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Peeked {
    /// Not a PROXY header: the client's first packet.
    NotAHeader,
    /// The start of a header (or of a signature): wait for more bytes.
    NeedMore,
    /// A header of `len` bytes; `source` is the client's address (`None` for `LOCAL` and
    /// `UNKNOWN` headers: the connection's own peer stands).
    Header {
        /// Bytes the header takes.
        len: usize,
        /// The real client.
        source: Option<SocketAddr>,
    },
    /// A header that cannot be read.
    Invalid(String),
}

fn compatible(bytes: &[u8], signature: &[u8]) -> bool {
    let n = bytes.len().min(signature.len());
    bytes[..n] == signature[..n]
}

/// Reads the first bytes a client sent (see the module table).
pub fn inspect(bytes: &[u8]) -> Peeked {
    if !compatible(bytes, V1_SIGNATURE) && !compatible(bytes, V2_SIGNATURE) {
        return Peeked::NotAHeader;
    }
    if bytes.len() < V1_SIGNATURE.len() || (compatible(bytes, V2_SIGNATURE) && bytes.len() < V2_SIGNATURE.len()) {
        return Peeked::NeedMore;
    }
    let parsed = ppp::HeaderResult::parse(bytes);
    if ppp::PartialResult::is_incomplete(&parsed) {
        return if bytes.len() >= HEADER_BYTES_MAX {
            Peeked::Invalid(format!("PROXY header longer than {HEADER_BYTES_MAX} bytes"))
        } else {
            Peeked::NeedMore
        };
    }
    match parsed {
        ppp::HeaderResult::V1(Ok(h)) => {
            let source = match h.addresses {
                ppp::v1::Addresses::Tcp4(a) => Some(SocketAddr::new(IpAddr::V4(a.source_address), a.source_port)),
                ppp::v1::Addresses::Tcp6(a) => Some(SocketAddr::new(IpAddr::V6(a.source_address), a.source_port)),
                ppp::v1::Addresses::Unknown => None,
            };
            Peeked::Header { len: h.header.len(), source }
        }
        ppp::HeaderResult::V2(Ok(h)) => {
            let source = match (h.command, h.addresses) {
                (ppp::v2::Command::Proxy, ppp::v2::Addresses::IPv4(a)) => {
                    Some(SocketAddr::new(IpAddr::V4(a.source_address), a.source_port))
                }
                (ppp::v2::Command::Proxy, ppp::v2::Addresses::IPv6(a)) => {
                    Some(SocketAddr::new(IpAddr::V6(a.source_address), a.source_port))
                }
                _ => None,
            };
            Peeked::Header { len: h.len(), source }
        }
        ppp::HeaderResult::V1(Err(e)) => Peeked::Invalid(format!("bad PROXY v1 header: {e}")),
        ppp::HeaderResult::V2(Err(e)) => Peeked::Invalid(format!("bad PROXY v2 header: {e}")),
    }
}

/// A trusted network, `addr/prefix` (a bare address is one host).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Network {
    addr: IpAddr,
    prefix: u8,
}

impl std::str::FromStr for Network {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = addr.trim().parse().map_err(|_| format!("`{s}` is not an address or addr/prefix"))?;
        let bits = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= bits)
                .ok_or_else(|| format!("`{s}`: prefix must be 0-{bits}"))?,
            None => bits,
        };
        Ok(Network { addr, prefix })
    }
}

impl Network {
    /// Whether `ip` is in this network (an IPv4-mapped IPv6 address counts as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.prefix)).unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(self.prefix)).unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_v1_v2_and_mysql_packets() {
        let v1 = b"PROXY TCP4 203.0.113.7 10.0.0.1 51000 8007\r\n\x24\x00\x00\x01rest";
        assert_eq!(inspect(v1), Peeked::Header { len: 44, source: Some("203.0.113.7:51000".parse().unwrap()) });
        let v1_6 = b"PROXY TCP6 2001:db8::1 2001:db8::2 40000 8007\r\n";
        assert_eq!(
            inspect(v1_6),
            Peeked::Header { len: v1_6.len(), source: Some("[2001:db8::1]:40000".parse().unwrap()) }
        );
        assert_eq!(inspect(b"PROXY UNKNOWN\r\n"), Peeked::Header { len: 15, source: None });
        assert_eq!(inspect(b"PROXY TCP4 203.0."), Peeked::NeedMore);
        assert_eq!(inspect(b"PRO"), Peeked::NeedMore);
        assert!(matches!(inspect(b"PROXY GARBAGE here\r\n"), Peeked::Invalid(_)));
        let mut v2 = V2_SIGNATURE.to_vec();
        v2.extend_from_slice(&[0x21, 0x11, 0, 12, 198, 51, 100, 9, 10, 0, 0, 1, 0xC3, 0x50, 0x1F, 0x47]);
        assert_eq!(inspect(&v2), Peeked::Header { len: 28, source: Some("198.51.100.9:50000".parse().unwrap()) });
        assert_eq!(inspect(&v2[..20]), Peeked::NeedMore);
        let mut local = V2_SIGNATURE.to_vec();
        local.extend_from_slice(&[0x20, 0x00, 0, 0]);
        assert_eq!(inspect(&local), Peeked::Header { len: 16, source: None });
        // A MySQL handshake response: length, sequence 1, capabilities…
        assert_eq!(inspect(&[0x55, 0x00, 0x00, 0x01, 0x8d, 0xa6]), Peeked::NotAHeader);
        assert_eq!(inspect(&[0x20, 0x00, 0x00, 0x01]), Peeked::NotAHeader);
    }

    #[test]
    fn networks() {
        let n: Network = "10.0.0.0/8".parse().unwrap();
        assert!(n.contains("10.200.1.2".parse().unwrap()));
        assert!(!n.contains("11.0.0.1".parse().unwrap()));
        assert!(n.contains("::ffff:10.1.1.1".parse().unwrap()), "IPv4-mapped");
        let host: Network = "127.0.0.1".parse().unwrap();
        assert!(host.contains("127.0.0.1".parse().unwrap()) && !host.contains("127.0.0.2".parse().unwrap()));
        let all: Network = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains("8.8.8.8".parse().unwrap()));
        let v6: Network = "2001:db8::/32".parse().unwrap();
        assert!(v6.contains("2001:db8:1::5".parse().unwrap()) && !v6.contains("2001:db9::1".parse().unwrap()));
        assert!("10.0.0.0/33".parse::<Network>().is_err());
        assert!("example.com".parse::<Network>().is_err());
    }
}
