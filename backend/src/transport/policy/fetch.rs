//! Fetching an MTA-STS policy (RFC 8461 §3.3): `GET /.well-known/mta-sts.txt` from
//! `mta-sts.<domain>` over HTTPS, its certificate verified for that name (the Mozilla roots
//! and the extra CAs). The thin I/O around `mta_sts::Policy::parse`.
//!
//! Invariants: no redirects are followed (§3.3), only `200` with a `text/plain` body counts,
//! the body is read to at most `MAX_POLICY` octets, and the whole fetch ends within `LIMIT`.
use super::mta_sts::{Policy, MAX_POLICY};
use http_body_util::{BodyExt, Empty, Limited};
use hyper::body::Bytes;
use std::net::SocketAddr;
use std::time::Duration;

/// The whole fetch, connect to body, ends within this.
pub const LIMIT: Duration = Duration::from_secs(15);

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("policy host {0}: {1}")]
    Connect(String, std::io::Error),
    #[error("policy fetch: {0}")]
    Http(String),
    #[error("policy fetch: answer {0} (only 200, no redirects)")]
    Status(u16),
    #[error("policy fetch: Content-Type {0:?}, not text/plain")]
    ContentType(String),
    #[error("policy fetch timed out")]
    Timeout,
    #[error("{0}")]
    Policy(#[from] super::mta_sts::StsError),
}

/// Fetches and parses the policy of the domain whose policy host is `host` (`mta-sts.<domain>`),
/// dialled at `addr`.
pub async fn fetch(host: &str, addr: SocketAddr) -> Result<Policy, FetchError> {
    tokio::time::timeout(LIMIT, get(host, addr))
        .await
        .map_err(|_| FetchError::Timeout)?
}

async fn get(host: &str, addr: SocketAddr) -> Result<Policy, FetchError> {
    let connect = |e| FetchError::Connect(host.to_string(), e);
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(connect)?;
    let tls = crate::tls_client::connect(tcp, host, true)
        .await
        .map_err(connect)?;
    let io = hyper_util::rt::TokioIo::new(tls);
    let http = |e: hyper::Error| FetchError::Http(e.to_string());
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(http)?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let request = hyper::Request::get("/.well-known/mta-sts.txt")
        .header(hyper::header::HOST, host)
        .header(hyper::header::USER_AGENT, "bridgehead")
        .body(Empty::<Bytes>::new())
        .map_err(|e| FetchError::Http(e.to_string()))?;
    let response = sender.send_request(request).await.map_err(http)?;
    let status = response.status().as_u16();
    if status != 200 {
        return Err(FetchError::Status(status));
    }
    let content_type = response
        .headers()
        .get(hyper::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    if !content_type.to_ascii_lowercase().starts_with("text/plain") {
        return Err(FetchError::ContentType(content_type));
    }
    let body = Limited::new(response.into_body(), MAX_POLICY)
        .collect()
        .await
        .map_err(|e| FetchError::Http(format!("body: {e}")))?
        .to_bytes();
    Ok(Policy::parse(&body)?)
}
