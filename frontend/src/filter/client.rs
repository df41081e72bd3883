//! The thin driver of one milter conversation: a connection (TCP or a Unix socket), the
//! commands `Conversation` names written out, its replies read back under deadlines.
//!
//! Invariants: every wait has a deadline (connect, each command's reply, the end-of-message
//! reply, which a filter may extend with "progress"); anything that goes wrong — refused or
//! dropped connection, a deadline, a malformed or oversized reply, a reply the step does not
//! allow — ends in the filter's default action, never a panic or a lost message; the
//! connection is closed after each message (QUIT).
use super::codec::{self, Command, Decoded};
use super::conversation::{After, Conversation, Next, Verdict};
use super::message::{Envelope, Headers};
use super::{MilterAddr, MilterSpec};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::timeout;

#[derive(Debug, thiserror::Error)]
pub enum MilterError {
    #[error("cannot connect: {0}")]
    Connect(std::io::Error),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("connection: {0}")]
    Io(#[from] std::io::Error),
    #[error("the milter closed the connection")]
    Closed,
    #[error(transparent)]
    Decode(#[from] codec::DecodeError),
    #[error(transparent)]
    Protocol(#[from] super::conversation::ProtocolError),
}

/// One message through one milter: its verdict and modifications, or why it could not say.
pub async fn converse(
    spec: &MilterSpec,
    envelope: &Envelope,
    headers: &Headers,
    body: &[&[u8]],
) -> Result<(Verdict, Vec<codec::Reply>), MilterError> {
    let wait = spec.connect_timeout;
    match &spec.addr {
        MilterAddr::Inet(addr) => {
            let stream = timeout(wait, tokio::net::TcpStream::connect(addr))
                .await
                .map_err(|_| MilterError::Timeout(wait))?
                .map_err(MilterError::Connect)?;
            let _ = stream.set_nodelay(true);
            run(stream, spec, envelope, headers, body).await
        }
        MilterAddr::Unix(path) => {
            let stream = timeout(wait, tokio::net::UnixStream::connect(path))
                .await
                .map_err(|_| MilterError::Timeout(wait))?
                .map_err(MilterError::Connect)?;
            run(stream, spec, envelope, headers, body).await
        }
    }
}

async fn run<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    spec: &MilterSpec,
    envelope: &Envelope,
    headers: &Headers,
    body: &[&[u8]],
) -> Result<(Verdict, Vec<codec::Reply>), MilterError> {
    let mut conv = Conversation::new(envelope, headers, body);
    let (mut out, mut buf) = (Vec::with_capacity(4096), Vec::with_capacity(1024));
    let verdict = loop {
        let (command, reply) = match conv.next_command() {
            Next::Done(v) => break v,
            Next::Send { command, reply } => (command, reply),
        };
        let end = command == Command::EndOfMessage;
        if let Some((_, pairs)) = envelope.macros.iter().find(|(s, _)| *s == command.code()) {
            let stage = command.code();
            Command::Macros { stage, pairs }.encode(&mut out);
        }
        command.encode(&mut out);
        // Body pieces without replies are gathered and written in larger writes.
        if reply || end || out.len() >= 64 * 1024 {
            timeout(spec.command_timeout, stream.write_all(&out))
                .await
                .map_err(|_| MilterError::Timeout(spec.command_timeout))??;
            out.clear();
        }
        if !reply {
            continue;
        }
        let wait = if end {
            spec.content_timeout
        } else {
            spec.command_timeout
        };
        let done = loop {
            let r = read_reply(&mut stream, &mut buf, wait).await?;
            match conv.reply(r)? {
                After::Next => break None,
                After::More => continue,
                After::Done(v) => break Some(v),
            }
        };
        if let Some(v) = done {
            break v;
        }
    };
    out.clear();
    Command::Quit.encode(&mut out);
    let _ = timeout(Duration::from_secs(1), stream.write_all(&out)).await;
    Ok((verdict, conv.take_modifications()))
}

/// Reads until one whole reply is in `buf`, within `wait`.
async fn read_reply<S: AsyncRead + Unpin>(
    stream: &mut S,
    buf: &mut Vec<u8>,
    wait: Duration,
) -> Result<codec::Reply, MilterError> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        if let Decoded::Reply(reply, used) = codec::decode(buf)? {
            buf.drain(..used);
            return Ok(reply);
        }
        let mut chunk = [0u8; 16 * 1024];
        let n = tokio::time::timeout_at(deadline, stream.read(&mut chunk))
            .await
            .map_err(|_| MilterError::Timeout(wait))??;
        if n == 0 {
            return Err(MilterError::Closed);
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}
