// A null relay: accept TCP, connect to the backend (host:port, or unix:/path), copy bytes
// both ways in one task. The floor cost of a user-space proxy hop on this machine.
use tokio::net::{TcpListener, TcpStream, UnixStream};
#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let listener = TcpListener::bind(&args[1]).await?;
    let backend = args[2].clone();
    loop {
        let (mut c, _) = listener.accept().await?;
        c.set_nodelay(true)?;
        let backend = backend.clone();
        tokio::spawn(async move {
            if let Some(path) = backend.strip_prefix("unix:") {
                if let Ok(mut b) = UnixStream::connect(path).await {
                    let _ = tokio::io::copy_bidirectional(&mut c, &mut b).await;
                }
            } else if let Ok(mut b) = TcpStream::connect(&backend).await {
                let _ = b.set_nodelay(true);
                let _ = tokio::io::copy_bidirectional(&mut c, &mut b).await;
            }
        });
    }
}
