//! The thin driver of one milter conversation: a connection (TCP or a Unix socket), the
//! commands `Conversation` names written out, its replies read back under deadlines.
//!
//! Invariants: every wait has a deadline (connect, each command's reply, the end-of-message
//! reply, which a filter may extend with "progress"); anything that goes wrong — refused or
//! dropped connection, a deadline, a malformed or oversized reply, a reply the step does not
//! allow — ends in the filter's default action, never a panic or a lost message; a
//! connection that failed is never used again, one that served a message is kept for the
//! next message of the same SMTP session (and closed with it).
use super::codec::{self, Command, Decoded};
use super::conversation::{After, Conversation, Next, Verdict};
use super::message::{Envelope, Headers};
use super::{FilterAddr, FilterSpec};
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

/// A connection to a milter, kept between the messages of one SMTP session (the protocol
/// lets a connection carry message after message: MAIL follows the last end of message).
pub struct Kept {
    stream: Box<dyn Io>,
    negotiated: (u32, u32),
    /// The HELO the filter was told: a connection is reused only for the same.
    helo: String,
}

/// A milter connection's transport.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send + Sync {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + Sync> Io for T {}

/// The verdict and the modifications asked for.
pub type Outcome = (Verdict, Vec<codec::Reply>);

/// One message through one milter, on the session's kept connection when there is one (a
/// kept connection that fails is replaced by a new one once), leaving the connection kept
/// for the next message.
pub async fn converse(
    spec: &FilterSpec,
    kept: &mut Option<Kept>,
    envelope: &Envelope,
    headers: &Headers,
    body: &[&[u8]],
) -> Result<Outcome, MilterError> {
    if let Some(k) = kept.take().filter(|k| k.helo == envelope.helo) {
        let resumed = Some(k.negotiated);
        let mut stream = k.stream;
        match run(&mut stream, spec, resumed, envelope, headers, body).await {
            Ok((outcome, negotiated)) => {
                *kept = Some(Kept {
                    stream,
                    negotiated,
                    helo: envelope.helo.clone(),
                });
                return Ok(outcome);
            }
            // The filter may have closed the idle connection: a new one, once. Any other
            // failure (silence, nonsense) is the filter's, not the connection's age.
            Err(MilterError::Io(_) | MilterError::Closed) => {}
            Err(e) => return Err(e),
        }
    }
    let mut stream = connect(spec).await?;
    let (outcome, negotiated) = run(&mut stream, spec, None, envelope, headers, body).await?;
    *kept = Some(Kept {
        stream,
        negotiated,
        helo: envelope.helo.clone(),
    });
    Ok(outcome)
}

async fn connect(spec: &FilterSpec) -> Result<Box<dyn Io>, MilterError> {
    let wait = spec.connect_timeout;
    Ok(match &spec.addr {
        FilterAddr::Inet(addr) => {
            let stream = timeout(wait, tokio::net::TcpStream::connect(addr))
                .await
                .map_err(|_| MilterError::Timeout(wait))?
                .map_err(MilterError::Connect)?;
            let _ = stream.set_nodelay(true);
            Box::new(stream)
        }
        FilterAddr::Unix(path) => Box::new(
            timeout(wait, tokio::net::UnixStream::connect(path))
                .await
                .map_err(|_| MilterError::Timeout(wait))?
                .map_err(MilterError::Connect)?,
        ),
    })
}

/// One conversation on `stream`: from option negotiation, or from MAIL when `resumed` says
/// what was negotiated before. Leaves the filter ready for another message (ABORT after a
/// verdict that came before the end of message).
async fn run(
    stream: &mut Box<dyn Io>,
    spec: &FilterSpec,
    resumed: Option<(u32, u32)>,
    envelope: &Envelope,
    headers: &Headers,
    body: &[&[u8]],
) -> Result<(Outcome, (u32, u32)), MilterError> {
    let mut conv = match resumed {
        Some(n) => Conversation::resumed(envelope, headers, body, n),
        None => Conversation::new(envelope, headers, body),
    };
    let (mut out, mut buf) = (Vec::with_capacity(4096), Vec::with_capacity(1024));
    let verdict = loop {
        let (command, reply) = match conv.next_command() {
            Next::Done(v) => break v,
            Next::Send { command, reply } => (command, reply),
        };
        let end = command == Command::EndOfMessage;
        macros(envelope, &command, &mut out);
        command.encode(&mut out);
        // Body pieces without replies are gathered and written in larger writes.
        if reply || end || out.len() >= 64 * 1024 {
            write(stream, &out, spec.command_timeout).await?;
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
            let r = read_reply(stream, &mut buf, wait).await?;
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
    if conv.ended_early() {
        out.clear();
        Command::Abort.encode(&mut out);
        write(stream, &out, spec.command_timeout).await?;
    }
    let negotiated = conv.negotiated();
    Ok(((verdict, conv.take_modifications()), negotiated))
}

/// The macros for the command's step, before it: the envelope's, and for a recipient its
/// `{rcpt_addr}`.
fn macros(envelope: &Envelope, command: &Command<'_>, out: &mut Vec<u8>) {
    let stage = command.code();
    let fixed = envelope.macros.iter().find(|(s, _)| *s == stage);
    if let Command::Rcpt(args) = command {
        let addr = args
            .first()
            .map_or("", |a| a.trim_start_matches('<').trim_end_matches('>'));
        let mut pairs = fixed.map(|(_, p)| p.clone()).unwrap_or_default();
        pairs.push(("{rcpt_addr}".to_string(), addr.to_string()));
        Command::Macros {
            stage,
            pairs: &pairs,
        }
        .encode(out);
    } else if let Some((_, pairs)) = fixed {
        Command::Macros { stage, pairs }.encode(out);
    }
}

async fn write(stream: &mut Box<dyn Io>, data: &[u8], wait: Duration) -> Result<(), MilterError> {
    timeout(wait, stream.write_all(data))
        .await
        .map_err(|_| MilterError::Timeout(wait))??;
    Ok(())
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
