//! The operations endpoint of every role: `GET /metrics` (Prometheus/OpenMetrics text),
//! `/healthz` (the process answers) and `/readyz` (it should get traffic); on a back-end that
//! publishes one, `/.well-known/mta-sts.txt` (the MTA-STS policy, RFC 8461). A minimal HTTP/1.1
//! responder: one request per connection, bounded request size, no request bodies.
use prometheus_client::encoding::text::{encode_eof, encode_registry};
use prometheus_client::registry::Registry;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub type Readiness = Arc<dyn Fn() -> bool + Send + Sync>;

/// Serves until `shutdown`; returns the bound address. `mta_sts`: the MTA-STS policy file
/// to answer `/.well-known/mta-sts.txt` with (a back-end publishing one).
pub async fn serve(
    addr: SocketAddr,
    registries: Vec<Arc<Registry>>,
    ready: Readiness,
    mta_sts: Option<Arc<String>>,
    shutdown: CancellationToken,
) -> anyhow::Result<SocketAddr> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {addr}: {e}"))?;
    let bound = listener.local_addr()?;
    tracing::info!(addr = %bound, "metrics and health endpoint");
    tokio::spawn(async move {
        loop {
            let (mut conn, _) = tokio::select! {
                _ = shutdown.cancelled() => return,
                a = listener.accept() => match a { Ok(a) => a, Err(_) => continue },
            };
            let (registries, ready) = (registries.clone(), ready.clone());
            let mta_sts = mta_sts.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 2048];
                let mut n = 0;
                while n < buf.len() && !buf[..n].windows(4).any(|w| w == b"\r\n\r\n") {
                    match tokio::time::timeout(Duration::from_secs(5), conn.read(&mut buf[n..]))
                        .await
                    {
                        Ok(Ok(0)) | Ok(Err(_)) | Err(_) => return,
                        Ok(Ok(k)) => n += k,
                    }
                }
                let request = String::from_utf8_lossy(&buf[..n]);
                let path = request.split_whitespace().nth(1).unwrap_or("");
                let (status, body) = match (path, &mta_sts) {
                    ("/.well-known/mta-sts.txt", Some(policy)) => ("200 OK", policy.to_string()),
                    _ => respond(path, &registries, ready.as_ref()),
                };
                let head = format!(
                    "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = conn.write_all(head.as_bytes()).await;
                let _ = conn.write_all(body.as_bytes()).await;
                let _ = conn.shutdown().await;
            });
        }
    });
    Ok(bound)
}

fn respond(
    path: &str,
    registries: &[Arc<Registry>],
    ready: &(dyn Fn() -> bool + Send + Sync),
) -> (&'static str, String) {
    match path {
        "/metrics" => {
            let mut body = String::new();
            for r in registries {
                let _ = encode_registry(&mut body, r);
            }
            let _ = encode_eof(&mut body);
            ("200 OK", body)
        }
        "/healthz" => ("200 OK", "ok\n".into()),
        "/readyz" if ready() => ("200 OK", "ready\n".into()),
        "/readyz" => ("503 Service Unavailable", "not ready\n".into()),
        _ => ("404 Not Found", "not found\n".into()),
    }
}
