//! Content filtering at the front door: the MTA side of the milter protocol (rspamd,
//! clamav-milter, OpenDKIM, OpenDMARC — the filters operators already run), after DATA and
//! before the handover to a back-end, so a verdict reaches the client in the same session.
//!
//! `codec` is the wire format and `conversation` one message's conversation, both pure;
//! `message` splits the spooled message for filters and applies what they change; `client`
//! is the thin driver. Invariants: filters run in the order configured, each on the message
//! as the previous ones left it (headers and envelope; a replaced body too); a filter that
//! is down, slow or talks nonsense gets its default action (`tempfail`, the safe one, or
//! `accept`: skipped) — a message is never lost to a filter; a reject or tempfail reaches the
//! client as the filter's own reply or the standard one, and no bounce is ever made for it.
pub mod clamd;
pub mod client;
pub mod codec;
pub mod conversation;
pub mod message;

use bytes::Bytes;
use conversation::{Verdict, TEMPFAIL};
use message::{Changes, Envelope};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Where a milter listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FilterAddr {
    Inet(SocketAddr),
    Unix(PathBuf),
}

/// What a message gets when its milter cannot be asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DefaultAction {
    /// `451 4.7.1`: the sender tries again later (Postfix's `milter_default_action = tempfail`).
    Tempfail,
    /// Go on without this filter.
    Accept,
}

/// What speaks at the address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilterKind {
    /// A milter (rspamd, clamav-milter, OpenDKIM, …).
    Milter,
    /// clamd itself, scanning with INSTREAM.
    Clamd,
}

/// One configured filter: a milter, or clamd (the `--milters` list takes both).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterSpec {
    /// As configured, for logs and metrics.
    pub name: String,
    pub kind: FilterKind,
    pub addr: FilterAddr,
    pub default_action: DefaultAction,
    pub connect_timeout: Duration,
    pub command_timeout: Duration,
    /// The reply to end of message (the scan itself).
    pub content_timeout: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("filter {spec:?}: {why} ([clamd:]inet:HOST:PORT or [clamd:]unix:/PATH, then ?default=tempfail|accept&timeout=SECS)")]
pub struct SpecError {
    pub spec: String,
    pub why: &'static str,
}

impl FilterSpec {
    /// `inet:127.0.0.1:11332` or `unix:/run/milter.sock` (a milter), `clamd:inet:…` or
    /// `clamd:unix:…` (clamd), optionally followed by `?default=accept&timeout=30` (timeout:
    /// seconds for each reply, and the scan).
    pub fn parse(spec: &str) -> Result<FilterSpec, SpecError> {
        let bad = |why| SpecError {
            spec: spec.to_string(),
            why,
        };
        let (name, options) = spec.trim().split_once('?').unwrap_or((spec.trim(), ""));
        let (kind, place) = match name.strip_prefix("clamd:") {
            Some(rest) => (FilterKind::Clamd, rest),
            None => (FilterKind::Milter, name),
        };
        let addr = if let Some(a) = place.strip_prefix("inet:") {
            FilterAddr::Inet(a.parse().map_err(|_| bad("not an address and port"))?)
        } else if let Some(p) = place.strip_prefix("unix:") {
            FilterAddr::Unix(PathBuf::from(p))
        } else {
            return Err(bad("unknown kind of address"));
        };
        let mut m = FilterSpec {
            name: name.to_string(),
            kind,
            addr,
            default_action: DefaultAction::Tempfail,
            connect_timeout: Duration::from_secs(10),
            command_timeout: Duration::from_secs(30),
            content_timeout: Duration::from_secs(300),
        };
        for option in options.split('&').filter(|o| !o.is_empty()) {
            match option.split_once('=') {
                Some(("default", "tempfail")) => m.default_action = DefaultAction::Tempfail,
                Some(("default", "accept")) => m.default_action = DefaultAction::Accept,
                Some(("timeout", secs)) => {
                    let secs: u64 = secs.parse().map_err(|_| bad("timeout is not seconds"))?;
                    m.command_timeout = Duration::from_secs(secs);
                    m.content_timeout = Duration::from_secs(secs);
                    m.connect_timeout = Duration::from_secs(secs.min(10));
                }
                _ => return Err(bad("unknown option")),
            }
        }
        Ok(m)
    }

    /// A comma-separated list.
    pub fn parse_list(list: &str) -> Result<Vec<FilterSpec>, SpecError> {
        list.split(',')
            .filter(|s| !s.trim().is_empty())
            .map(FilterSpec::parse)
            .collect()
    }
}

/// What the filters decided about a message.
#[derive(Debug)]
pub enum Filtered {
    /// Hand it over: the blocks (the same ones when nothing changed) and envelope changes.
    Deliver {
        blocks: Vec<Bytes>,
        changes: Changes,
    },
    /// Reply this (4xx or 5xx) and store nothing.
    Refuse(String),
    /// Reply 250 and store nothing.
    Discard,
    /// Store it held.
    Quarantine {
        blocks: Vec<Bytes>,
        changes: Changes,
        why: String,
    },
}

/// The connections an SMTP session keeps to its milters, one place per milter.
pub type KeptConnections = Vec<Option<client::Kept>>;

/// Runs the message through every filter in order, on the session's `kept` connections.
pub async fn run(
    filters: &[FilterSpec],
    kept: &mut KeptConnections,
    envelope: &Envelope,
    blocks: Vec<Bytes>,
    metrics: &crate::metrics::Metrics,
) -> Filtered {
    kept.resize_with(filters.len(), || None);
    let split = message::split(&blocks);
    let mut changes = Changes::default();
    let mut quarantine = None;
    for (spec, kept) in filters.iter().zip(kept.iter_mut()) {
        let started = Instant::now();
        let message = Current {
            blocks: &blocks,
            split: &split,
            changes: &changes,
        };
        let (verdict, mods) = match ask(spec, kept, envelope, message).await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(filter = %spec.name, error = %e, action = ?spec.default_action, "filter failed; default action");
                metrics.milter_failure(&spec.name);
                match spec.default_action {
                    DefaultAction::Tempfail => (Verdict::Tempfail(TEMPFAIL.into()), Vec::new()),
                    DefaultAction::Accept => (Verdict::Continue, Vec::new()),
                }
            }
        };
        metrics.milter_verdict(&spec.name, verdict_name(&verdict), started.elapsed());
        changes.apply(&split.headers, mods);
        match verdict {
            Verdict::Continue | Verdict::Accept => {}
            Verdict::Quarantine(why) => quarantine = Some(why),
            Verdict::Reject(reply) | Verdict::Tempfail(reply) => return Filtered::Refuse(reply),
            Verdict::Discard => return Filtered::Discard,
        }
    }
    let blocks = match changes.headers.is_some() || changes.body.is_some() {
        true => message::rebuild(&blocks, &split, &changes),
        false => blocks,
    };
    match quarantine {
        Some(why) => Filtered::Quarantine {
            blocks,
            changes,
            why,
        },
        None => Filtered::Deliver { blocks, changes },
    }
}

/// The message as the filters before have left it.
#[derive(Clone, Copy)]
struct Current<'a> {
    blocks: &'a [Bytes],
    split: &'a message::Split,
    changes: &'a Changes,
}

/// One filter's verdict on the message as it is now, in a span of its own.
async fn ask(
    spec: &FilterSpec,
    kept: &mut Option<client::Kept>,
    envelope: &Envelope,
    m: Current<'_>,
) -> Result<(Verdict, Vec<codec::Reply>), String> {
    use tracing::Instrument;
    let span = tracing::info_span!("milter", milter = %spec.name);
    match spec.kind {
        FilterKind::Milter => {
            let headers = m.changes.headers.as_ref().unwrap_or(&m.split.headers);
            let pieces = match &m.changes.body {
                Some(b) => b.chunks(codec::BODY_CHUNK).collect(),
                None => message::body_pieces(m.blocks, m.split.header_len),
            };
            client::converse(spec, kept, envelope, headers, &pieces)
                .instrument(span)
                .await
                .map_err(|e| e.to_string())
        }
        FilterKind::Clamd => {
            let whole = whole_message(m.blocks, m.split, m.changes);
            let pieces: Vec<&[u8]> = whole.iter().map(|b| &b[..]).collect();
            clamd_verdict(spec, &pieces).instrument(span).await
        }
    }
}

/// The message as the filters have left it so far: the blocks themselves when unchanged.
fn whole_message(blocks: &[Bytes], split: &message::Split, changes: &Changes) -> Vec<Bytes> {
    match changes.headers.is_some() || changes.body.is_some() {
        true => message::rebuild(blocks, split, changes),
        false => blocks.to_vec(),
    }
}

/// clamd's answer as a filter's verdict: a virus is refused with its name.
async fn clamd_verdict(
    spec: &FilterSpec,
    pieces: &[&[u8]],
) -> Result<(Verdict, Vec<codec::Reply>), String> {
    match clamd::scan(spec, pieces).await.map_err(|e| e.to_string())? {
        clamd::ScanResult::Clean => Ok((Verdict::Continue, Vec::new())),
        clamd::ScanResult::Virus(name) => {
            let name: String = name.chars().filter(|c| !c.is_control()).take(100).collect();
            tracing::info!(filter = %spec.name, virus = %name, "virus found");
            let reply = format!("554 5.7.1 Message refused: virus found ({name})");
            Ok((Verdict::Reject(reply), Vec::new()))
        }
    }
}

fn verdict_name(v: &Verdict) -> &'static str {
    match v {
        Verdict::Continue => "continue",
        Verdict::Accept => "accept",
        Verdict::Reject(_) => "reject",
        Verdict::Tempfail(_) => "tempfail",
        Verdict::Discard => "discard",
        Verdict::Quarantine(_) => "quarantine",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse_with_their_options() {
        let m = FilterSpec::parse("inet:127.0.0.1:11332?default=accept&timeout=5").unwrap();
        assert_eq!(m.addr, FilterAddr::Inet("127.0.0.1:11332".parse().unwrap()));
        assert_eq!(m.default_action, DefaultAction::Accept);
        assert_eq!(m.content_timeout, Duration::from_secs(5));
        let u = FilterSpec::parse("unix:/run/clamav/milter.sock").unwrap();
        assert_eq!(u.default_action, DefaultAction::Tempfail);
        assert_eq!(u.addr, FilterAddr::Unix("/run/clamav/milter.sock".into()));
        assert_eq!(
            FilterSpec::parse_list("inet:127.0.0.1:1, unix:/x")
                .unwrap()
                .len(),
            2
        );
        for bad in [
            "tcp:1.2.3.4:5",
            "inet:nohost",
            "inet:127.0.0.1:1?default=maybe",
            "inet:127.0.0.1:1?timeout=x",
        ] {
            assert!(FilterSpec::parse(bad).is_err(), "{bad}");
        }
    }
}
