//! The client's socket (plain or TLS) with the buffers shoal reads packets into and
//! writes its own answers from. Idle clients hold no buffer memory.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio_util::io::poll_read_buf;

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;

use crate::error::ProxyError;
use crate::protocol::packet::{put_packet, take_packet, HEADER_BYTES};
use crate::protocol::proxy_header::{inspect, Peeked, HEADER_BYTES_MAX};

/// Bytes read from a client socket at a time.
pub const READ_CHUNK_BYTES: usize = 16 * 1024;
/// Buffer for the first read of a command (see `read_packet`).
const SMALL_READ_BYTES: usize = 2048;
/// How long to wait for the rest of a PROXY header that arrived in pieces.
const PROXY_HEADER_RETRY: std::time::Duration = std::time::Duration::from_millis(5);
/// The largest reply shoal holds back while an autocommit write becomes durable
/// ([`ClientIo::hold`]); a larger one fails the statement (and its transaction).
pub const HELD_RESPONSE_BYTES_MAX: usize = 64 * 1024 * 1024;
/// A write buffer that grew beyond this is released after use.
const WRITE_BUF_KEEP_BYTES: usize = 16 * 1024;

/// A client socket.
pub enum ClientStream {
    /// Plain TCP. The write half is shared with a pipe while it writes a pipelined read's
    /// response (`crate::backend::pipeline`), so it is used through `&self` only.
    Plain { read: OwnedReadHalf, write: Arc<OwnedWriteHalf> },
    /// TLS over TCP (after an SSLRequest).
    Tls(Box<TlsStream<TcpStream>>),
}

impl AsyncRead for ClientStream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            ClientStream::Plain { read, .. } => Pin::new(read).poll_read(cx, buf),
            ClientStream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for ClientStream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            ClientStream::Plain { write, .. } => loop {
                ready!(write.as_ref().as_ref().poll_write_ready(cx))?;
                match write.try_write(buf) {
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    r => return Poll::Ready(r),
                }
            },
            ClientStream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            ClientStream::Plain { .. } => Poll::Ready(Ok(())),
            ClientStream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            // A pipe may still hold the write half for a moment; the last one to drop it
            // closes the socket anyway.
            ClientStream::Plain { write, .. } => match Arc::get_mut(write) {
                Some(w) => Pin::new(w).poll_shutdown(cx),
                None => Poll::Ready(Ok(())),
            },
            ClientStream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

impl ClientStream {
    /// A plain TCP client.
    pub fn plain(stream: TcpStream) -> Self {
        let (read, write) = stream.into_split();
        ClientStream::Plain { read, write: Arc::new(write) }
    }

    /// The TCP socket again (nothing else may hold its write half).
    pub fn into_tcp(self) -> Option<TcpStream> {
        match self {
            ClientStream::Plain { read, write } => read.reunite(Arc::try_unwrap(write).ok()?).ok(),
            ClientStream::Tls(_) => None,
        }
    }
}

/// A client connection's packet I/O.
pub struct ClientIo {
    /// The socket; replaced by its TLS form during the handshake.
    pub stream: Option<ClientStream>,
    /// Received bytes not yet parsed into packets.
    rbuf: BytesMut,
    /// shoal's own answers, written by [`Self::flush`].
    pub wbuf: BytesMut,
    /// `packet_bytes_max`: larger client packets are refused.
    packet_bytes_max: usize,
    /// Bytes went to the client since the flag was last cleared: an error after that
    /// point cannot be reported in-band.
    pub wrote: bool,
    /// While set, relayed responses collect here instead of going out ([`Self::hold`]):
    /// an autocommit write's reply waits until its transaction is durable.
    held: Option<BytesMut>,
}

fn io_err(e: std::io::Error) -> ProxyError {
    ProxyError::ClientIo(e)
}

fn gone() -> ProxyError {
    ProxyError::ClientIo(std::io::ErrorKind::UnexpectedEof.into())
}

impl ClientIo {
    /// Wraps an accepted socket.
    pub fn new(stream: TcpStream, packet_bytes_max: usize) -> Self {
        ClientIo {
            stream: Some(ClientStream::plain(stream)),
            rbuf: BytesMut::new(),
            wbuf: BytesMut::new(),
            packet_bytes_max,
            wrote: false,
            held: None,
        }
    }

    /// From now on, relayed responses are kept (up to [`HELD_RESPONSE_BYTES_MAX`]) until
    /// [`Self::take_held`].
    pub fn hold(&mut self) {
        self.held = Some(BytesMut::new());
    }

    /// Stops holding and returns what was held.
    pub fn take_held(&mut self) -> BytesMut {
        self.held.take().unwrap_or_default()
    }

    fn stream(&mut self) -> Result<&mut ClientStream, ProxyError> {
        self.stream.as_mut().ok_or_else(gone)
    }

    /// The plain socket, for a pipe to write a response to directly (`None` with TLS).
    pub fn plain(&self) -> Option<Arc<OwnedWriteHalf>> {
        match &self.stream {
            Some(ClientStream::Plain { write, .. }) => Some(write.clone()),
            _ => None,
        }
    }

    /// True for TLS connections.
    pub fn is_tls(&self) -> bool {
        matches!(self.stream, Some(ClientStream::Tls(_)))
    }

    /// Reads one logical packet (split frames joined).
    pub async fn read_packet(&mut self) -> Result<(u8, BytesMut), ProxyError> {
        loop {
            if let Some(p) = take_packet(&mut self.rbuf, self.packet_bytes_max)? {
                crate::metrics::client_received(p.1.len() + HEADER_BYTES);
                return Ok(p);
            }
            if self.rbuf.is_empty() {
                // Idle: hold no buffer while waiting for the next command, then read it
                // into a small one (most commands fit).
                self.rbuf = BytesMut::new();
                if let Some(ClientStream::Plain { read, .. }) = &mut self.stream {
                    read.readable().await.map_err(io_err)?;
                    self.rbuf.reserve(SMALL_READ_BYTES);
                    // One attempt, never a wait: the readiness may be stale (a read that
                    // filled its buffer exactly leaves it set), and an idle session must
                    // not wait holding the buffer. A read that drains the socket clears
                    // the readiness, so the next wait costs no extra `recv`.
                    let rbuf = &mut self.rbuf;
                    let read = std::future::poll_fn(|cx| match poll_read_buf(Pin::new(&mut *read), cx, rbuf) {
                        Poll::Pending => Poll::Ready(None),
                        Poll::Ready(r) => Poll::Ready(Some(r)),
                    })
                    .await;
                    match read {
                        Some(Ok(0)) => return Err(gone()),
                        Some(Err(e)) => return Err(io_err(e)),
                        // Got bytes, or nothing after all (wait again).
                        Some(Ok(_)) | None => continue,
                    }
                }
            }
            self.rbuf.reserve(READ_CHUNK_BYTES);
            // (A read that leaves the socket empty clears its readiness, so the next wait
            // costs no extra `recv`.)
            let stream = self.stream.as_mut().ok_or_else(gone)?;
            if stream.read_buf(&mut self.rbuf).await.map_err(io_err)? == 0 {
                return Err(gone());
            }
        }
    }

    /// Takes a PROXY protocol header off the front of the connection if the client sent
    /// one (`protocol::proxy_header`), reading nothing past it (a TLS handshake may follow).
    pub async fn take_proxy_header(&mut self) -> Result<Peeked, ProxyError> {
        let Some(ClientStream::Plain { read, .. }) = &mut self.stream else { return Ok(Peeked::NotAHeader) };
        let mut buf = vec![0u8; HEADER_BYTES_MAX];
        loop {
            let n = read.peek(&mut buf).await.map_err(io_err)?;
            if n == 0 {
                return Err(gone());
            }
            match inspect(&buf[..n]) {
                // Peeking again returns at once with the same bytes: give the rest time to
                // arrive (the handshake timeout bounds the wait).
                Peeked::NeedMore => tokio::time::sleep(PROXY_HEADER_RETRY).await,
                Peeked::Header { len, source } => {
                    read.read_exact(&mut buf[..len]).await.map_err(io_err)?;
                    return Ok(Peeked::Header { len, source });
                }
                other => return Ok(other),
            }
        }
    }

    /// Reads exactly one packet without reading past it (before a TLS upgrade, the
    /// bytes after the SSLRequest belong to the TLS layer).
    pub async fn read_packet_exact(&mut self) -> Result<(u8, BytesMut), ProxyError> {
        debug_assert!(self.rbuf.is_empty());
        let mut header = [0u8; HEADER_BYTES];
        let stream = self.stream()?;
        stream.read_exact(&mut header).await.map_err(io_err)?;
        let len = header[0] as usize | (header[1] as usize) << 8 | (header[2] as usize) << 16;
        // Handshake packets are small; anything big here is not a MySQL client.
        const HANDSHAKE_BYTES_MAX: usize = 64 * 1024;
        if len > HANDSHAKE_BYTES_MAX {
            return Err(ProxyError::ClientProtocol(format!("handshake packet of {len} bytes")));
        }
        let mut payload = BytesMut::zeroed(len);
        stream.read_exact(&mut payload).await.map_err(io_err)?;
        Ok((header[3], payload))
    }

    /// Queues a packet in the write buffer; returns the next sequence id.
    pub fn queue(&mut self, seq: u8, payload: &[u8]) -> u8 {
        put_packet(&mut self.wbuf, seq, payload)
    }

    /// Writes the queued packets.
    pub async fn flush(&mut self) -> Result<(), ProxyError> {
        if self.wbuf.is_empty() {
            return Ok(());
        }
        let buf = std::mem::take(&mut self.wbuf);
        self.write_raw(&buf).await?;
        if buf.capacity() <= WRITE_BUF_KEEP_BYTES {
            // Keep a modest buffer for the next answer, but release it when idle
            // (see `release_idle`).
            let mut buf = buf;
            buf.clear();
            self.wbuf = buf;
        }
        Ok(())
    }

    /// Frees buffers before waiting for the next command.
    pub fn release_idle(&mut self) {
        if self.wbuf.is_empty() {
            self.wbuf = BytesMut::new();
        }
    }

    /// Writes bytes that already are whole frames (relayed from a backend).
    pub async fn write_raw(&mut self, bytes: &[u8]) -> Result<(), ProxyError> {
        if let Some(held) = self.held.as_mut() {
            if held.len() + bytes.len() > HELD_RESPONSE_BYTES_MAX {
                return Err(ProxyError::Limit {
                    what: "held_response_bytes_max",
                    limit: HELD_RESPONSE_BYTES_MAX as u64,
                    hint: "an autocommit write's reply is held until the write is durable; run a statement with a reply this large inside BEGIN ... COMMIT",
                    code: crate::error::ER_UNKNOWN_ERROR,
                });
            }
            held.extend_from_slice(bytes);
            return Ok(());
        }
        self.wrote = true;
        crate::metrics::client_sent(bytes.len());
        let stream = self.stream()?;
        stream.write_all(bytes).await.map_err(io_err)?;
        if let ClientStream::Tls(s) = stream {
            s.flush().await.map_err(io_err)?;
        }
        Ok(())
    }

    /// Closes the connection politely.
    pub async fn shutdown(&mut self) {
        if let Some(s) = self.stream.as_mut() {
            let _ = s.shutdown().await;
        }
    }
}

impl crate::backend::conn::ClientSink for ClientIo {
    async fn write_frames(&mut self, bytes: &[u8]) -> Result<(), ProxyError> {
        self.write_raw(bytes).await
    }
    async fn read_packet(&mut self) -> Result<(u8, BytesMut), ProxyError> {
        // The server asks the client for something (LOAD DATA LOCAL's file): what was held
        // so far must reach the client first; holding goes on for the rest.
        if let Some(held) = self.held.as_mut().filter(|h| !h.is_empty()) {
            let out = std::mem::take(held);
            self.held = None;
            let r = self.write_raw(&out).await;
            self.held = Some(BytesMut::new());
            r?;
        }
        ClientIo::read_packet(self).await
    }
}
