//! `bridgehead health [URL]`: the container health probe — one HTTP GET of a node's own
//! `/readyz` (or any plain-HTTP URL), success only for a `200`. The runtime image has no
//! curl or wget, so compose health checks call the binary itself. Bounded: 3 s in all.
use anyhow::{bail, Context, Result};
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(3);

pub fn probe(url: &str) -> Result<()> {
    let rest = url
        .strip_prefix("http://")
        .with_context(|| format!("{url}: only http:// URLs are probed"))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let addr = authority
        .to_socket_addrs()
        .with_context(|| format!("{authority}: not HOST:PORT"))?
        .next()
        .with_context(|| format!("{authority}: no address"))?;
    let mut tcp = TcpStream::connect_timeout(&addr, LIMIT)
        .with_context(|| format!("connect to {authority}"))?;
    tcp.set_read_timeout(Some(LIMIT))?;
    tcp.set_write_timeout(Some(LIMIT))?;
    write!(
        tcp,
        "GET {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n"
    )?;
    let mut head = [0u8; 64];
    let n = tcp.read(&mut head).context("read the answer")?;
    let status = String::from_utf8_lossy(&head[..n]);
    let line = status.lines().next().unwrap_or_default();
    if !line.starts_with("HTTP/1.1 200") && !line.starts_with("HTTP/1.0 200") {
        bail!("{url}: {line}");
    }
    Ok(())
}
