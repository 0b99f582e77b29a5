//! A minimal blocking HTTP/1.1 GET/POST for `shoal status`, `shoal servers` and
//! `shoal leave` (the API answers with `Content-Length` and closes, so no chunking or
//! keep-alive is needed), and an HTTP/1.0 streaming GET for `shoal migrate` ([`get_stream`]:
//! a 1.0 request gets a body that ends when the connection closes, never chunked).

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

/// A response: status code and body.
#[derive(Debug)]
pub struct Response {
    /// HTTP status.
    pub status: u16,
    /// Body text.
    pub body: String,
}

/// Where to reach the API: `0.0.0.0`/`[::]` binds are reached on loopback.
pub fn connect_address(bind: &str) -> String {
    let bind = bind.trim_start_matches("http://").trim_end_matches('/');
    match bind.rsplit_once(':') {
        Some(("0.0.0.0", port)) => format!("127.0.0.1:{port}"),
        Some(("[::]", port)) => format!("[::1]:{port}"),
        Some(_) => bind.to_string(),
        None => format!("{bind}:8080"),
    }
}

/// `GET path` from `addr` (host:port) with an optional bearer token.
pub fn get(addr: &str, path: &str, token: Option<&str>, timeout: Duration) -> std::io::Result<Response> {
    request("GET", addr, path, token, None, timeout)
}

/// `POST path` (empty body) to `addr` with an optional bearer token.
pub fn post(addr: &str, path: &str, token: Option<&str>, timeout: Duration) -> std::io::Result<Response> {
    request("POST", addr, path, token, None, timeout)
}

/// `POST path` with a JSON body.
pub fn post_json(
    addr: &str,
    path: &str,
    token: Option<&str>,
    json: &str,
    timeout: Duration,
) -> std::io::Result<Response> {
    request("POST", addr, path, token, Some(json), timeout)
}

/// A TCP connection to `addr` whose connect, reads and writes time out after `timeout`.
fn connect(addr: &str, timeout: Duration) -> std::io::Result<TcpStream> {
    let sock = addr
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, format!("{addr}: no address")))?;
    let stream = TcpStream::connect_timeout(&sock, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    Ok(stream)
}

fn request(
    method: &str,
    addr: &str,
    path: &str,
    token: Option<&str>,
    json: Option<&str>,
    timeout: Duration,
) -> std::io::Result<Response> {
    let mut stream = connect(addr, timeout)?;
    let length = match (method, json) {
        (_, Some(j)) => format!("Content-Type: application/json\r\nContent-Length: {}\r\n", j.len()),
        ("POST", None) => "Content-Length: 0\r\n".to_string(),
        _ => String::new(),
    };
    let mut request =
        format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nAccept: */*\r\n{length}");
    if let Some(t) = token {
        request.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(json.unwrap_or_default());
    stream.write_all(request.as_bytes())?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw);
    let bad = || std::io::Error::new(std::io::ErrorKind::InvalidData, "not an HTTP response");
    let (head, body) = text.split_once("\r\n\r\n").ok_or_else(bad)?;
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).ok_or_else(bad)?;
    Ok(Response { status, body: body.to_string() })
}

/// A response whose body is still on the wire.
pub struct Streaming {
    /// HTTP status.
    pub status: u16,
    /// Header names (lower case) and values.
    pub headers: Vec<(String, String)>,
    /// The body, until the server closes.
    pub body: std::io::BufReader<TcpStream>,
}

impl Streaming {
    /// The first header named `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

/// Longest header block [`get_stream`] reads.
pub const HEADERS_BYTES_MAX: usize = 64 * 1024;

/// `GET path` as HTTP/1.0, returning once the headers are in; reads time out after
/// `timeout` of silence.
pub fn get_stream(addr: &str, path: &str, token: Option<&str>, timeout: Duration) -> std::io::Result<Streaming> {
    use std::io::BufRead;
    let mut stream = connect(addr, timeout)?;
    let mut request = format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\nAccept: */*\r\n");
    if let Some(t) = token {
        request.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes())?;
    let mut body = std::io::BufReader::with_capacity(256 * 1024, stream);
    let bad =
        |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, format!("not an HTTP response: {what}"));
    let (mut status, mut headers, mut read) = (None, Vec::new(), 0);
    loop {
        let mut line = String::new();
        let n = body.read_line(&mut line)?;
        read += n;
        if n == 0 || read > HEADERS_BYTES_MAX {
            return Err(bad("the header block does not end"));
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        match status {
            None => {
                status = Some(line.split_whitespace().nth(1).and_then(|s| s.parse().ok()).ok_or_else(|| bad(line))?)
            }
            Some(_) => {
                if let Some((n, v)) = line.split_once(':') {
                    headers.push((n.trim().to_ascii_lowercase(), v.trim().to_string()));
                }
            }
        }
    }
    Ok(Streaming { status: status.ok_or_else(|| bad("no status line"))?, headers, body })
}

#[cfg(test)]
mod tests {
    use super::connect_address;

    #[test]
    fn wildcard_binds_are_reached_on_loopback() {
        assert_eq!(connect_address("0.0.0.0:8080"), "127.0.0.1:8080");
        assert_eq!(connect_address("http://10.0.0.1:9000/"), "10.0.0.1:9000");
        assert_eq!(connect_address("localhost"), "localhost:8080");
    }
}
