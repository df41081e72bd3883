//! ClamAV scanning without a milter: the message streamed to clamd with `INSTREAM` (clamd's
//! own protocol: `zINSTREAM\0`, then chunks each led by its 32-bit big-endian length, then a
//! zero length; one NUL-terminated reply). The reply parsing is pure; `scan` is the driver.
//!
//! Invariants: a virus is a reject with its name; anything but a clear answer (an error
//! reply, a size limit, a closed or silent connection) is a failure, so the caller applies
//! the default action — a message is never passed as clean because clamd could not say.
use super::client::Io;
use super::{FilterAddr, FilterSpec};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::timeout;

/// The most octets in one INSTREAM chunk.
const CHUNK: usize = 64 * 1024;
/// The longest reply taken.
const MAX_REPLY: usize = 4096;

/// What clamd said about a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScanResult {
    Clean,
    /// The signature's name.
    Virus(String),
}

#[derive(Debug, thiserror::Error)]
pub enum ClamdError {
    #[error("cannot connect: {0}")]
    Connect(std::io::Error),
    #[error("connection: {0}")]
    Io(#[from] std::io::Error),
    #[error("no answer in time")]
    Timeout,
    #[error("clamd could not scan: {0}")]
    Refused(String),
}

/// Parses clamd's reply to INSTREAM (`stream: OK`, `stream: NAME FOUND`, `… ERROR`).
pub fn parse_reply(reply: &[u8]) -> Result<ScanResult, ClamdError> {
    let text = String::from_utf8_lossy(reply);
    let text = text.trim_end_matches(['\0', '\n']).trim();
    let body = text.strip_prefix("stream:").map(str::trim);
    match body {
        Some("OK") => Ok(ScanResult::Clean),
        Some(b) if b.ends_with(" FOUND") => {
            let name = b.trim_end_matches(" FOUND").trim();
            Ok(ScanResult::Virus(name.to_string()))
        }
        _ => Err(ClamdError::Refused(text.chars().take(200).collect())),
    }
}

/// Streams `pieces` (the whole message) to clamd and reads its verdict.
pub async fn scan(spec: &FilterSpec, pieces: &[&[u8]]) -> Result<ScanResult, ClamdError> {
    let wait = spec.connect_timeout;
    let mut stream: Box<dyn Io> = match &spec.addr {
        FilterAddr::Inet(a) => Box::new(
            timeout(wait, tokio::net::TcpStream::connect(a))
                .await
                .map_err(|_| ClamdError::Timeout)?
                .map_err(ClamdError::Connect)?,
        ),
        FilterAddr::Unix(p) => Box::new(
            timeout(wait, tokio::net::UnixStream::connect(p))
                .await
                .map_err(|_| ClamdError::Timeout)?
                .map_err(ClamdError::Connect)?,
        ),
    };
    let deadline = tokio::time::Instant::now() + spec.content_timeout;
    let talk = async {
        stream.write_all(b"zINSTREAM\0").await?;
        for piece in pieces {
            for chunk in piece.chunks(CHUNK) {
                stream
                    .write_all(&(chunk.len() as u32).to_be_bytes())
                    .await?;
                stream.write_all(chunk).await?;
            }
        }
        stream.write_all(&0u32.to_be_bytes()).await?;
        let mut reply = Vec::with_capacity(64);
        let mut buf = [0u8; 512];
        while !reply.contains(&0) && reply.len() < MAX_REPLY {
            let n = stream.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            reply.extend_from_slice(&buf[..n]);
        }
        Ok::<_, ClamdError>(reply)
    };
    let reply = tokio::time::timeout_at(deadline, talk)
        .await
        .map_err(|_| ClamdError::Timeout)??;
    parse_reply(&reply)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies() {
        assert_eq!(parse_reply(b"stream: OK\0").unwrap(), ScanResult::Clean);
        assert_eq!(
            parse_reply(b"stream: Win.Test.EICAR_HDB-1 FOUND\0").unwrap(),
            ScanResult::Virus("Win.Test.EICAR_HDB-1".into())
        );
        for bad in [
            &b"INSTREAM size limit exceeded. ERROR\0"[..],
            b"",
            b"stream: ",
            b"\xff\xfe",
        ] {
            assert!(parse_reply(bad).is_err(), "{bad:?}");
        }
    }
}
