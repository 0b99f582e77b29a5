//! A null relay: accept TCP, connect to the backend (`host:port` or `unix:/path`), copy
//! bytes both ways in one task. No MySQL parsing, no pool: the floor cost of one
//! user-space proxy hop on this machine (see ../ab.sh).
//!
//! `nullrelay LISTEN BACKEND [SPIN_US]`: with SPIN_US > 0, after forwarding client bytes
//! the task polls the backend socket with non-blocking `recv` for up to SPIN_US
//! microseconds before parking in epoll: an experiment on the cost of wake-ups.
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UnixStream};

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let listener = TcpListener::bind(&args[1]).await?;
    let backend = args[2].clone();
    let spin = Duration::from_micros(args.get(3).and_then(|s| s.parse().ok()).unwrap_or(0));
    loop {
        let (mut c, _) = listener.accept().await?;
        c.set_nodelay(true)?;
        let backend = backend.clone();
        tokio::spawn(async move {
            if let Some(path) = backend.strip_prefix("unix:") {
                if let Ok(mut b) = UnixStream::connect(path).await {
                    let fd = b.as_raw_fd();
                    let _ = relay(&mut c, &mut b, fd, spin).await;
                }
            } else if let Ok(mut b) = TcpStream::connect(&backend).await {
                let _ = b.set_nodelay(true);
                let fd = b.as_raw_fd();
                let _ = relay(&mut c, &mut b, fd, spin).await;
            }
        });
    }
}

async fn relay<B: AsyncRead + AsyncWrite + Unpin>(
    c: &mut TcpStream,
    b: &mut B,
    bfd: i32,
    spin: Duration,
) -> std::io::Result<()> {
    if spin.is_zero() {
        tokio::io::copy_bidirectional(c, b).await?;
        return Ok(());
    }
    let mut cbuf = vec![0u8; 64 * 1024];
    let mut bbuf = vec![0u8; 64 * 1024];
    loop {
        tokio::select! {
            r = c.read(&mut cbuf) => {
                let n = r?;
                if n == 0 { return Ok(()); }
                b.write_all(&cbuf[..n]).await?;
                // Spin for the answer before parking.
                let deadline = Instant::now() + spin;
                loop {
                    // SAFETY: bbuf is a valid writable buffer of its length; bfd is open.
                    let r = unsafe { libc::recv(bfd, bbuf.as_mut_ptr().cast(), bbuf.len(), libc::MSG_DONTWAIT) };
                    if r > 0 {
                        c.write_all(&bbuf[..r as usize]).await?;
                        break;
                    }
                    if r == 0 || Instant::now() >= deadline {
                        break;
                    }
                    std::hint::spin_loop();
                }
            }
            r = b.read(&mut bbuf) => {
                let n = r?;
                if n == 0 { return Ok(()); }
                c.write_all(&bbuf[..n]).await?;
            }
        }
    }
}
