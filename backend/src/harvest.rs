//! Recipient harvesting: unknown recipients asked for by unauthenticated clients are counted
//! per client address (in PostgreSQL, so every front-end and back-end sees one count), and
//! past a limit within a window the address is refused every RCPT (`450 4.7.1`), known
//! recipients included, so probing tells it nothing. Like Postfix's anvil limits and
//! Exchange's tarpitting; a sender with a few typos never reaches the limit.
//!
//! Invariant: counting costs nothing on the path of a known recipient; only an unknown one
//! writes a row.
use crate::store::Result;
use crate::store::Store;
use std::time::Duration;

/// When a client address is refused for asking after unknown recipients.
#[derive(Debug, Clone)]
pub struct HarvestPolicy {
    /// Unknown recipients within the window after which every RCPT is refused (0: never).
    pub limit: u32,
    /// How long a count lasts since its last unknown recipient; also how long the refusal lasts.
    pub window: Duration,
}

impl Default for HarvestPolicy {
    fn default() -> Self {
        HarvestPolicy {
            limit: 20,
            window: Duration::from_secs(600),
        }
    }
}

impl HarvestPolicy {
    pub fn window_secs(&self) -> u32 {
        self.window.as_secs().clamp(1, u64::from(u32::MAX)) as u32
    }
}

/// What an unknown recipient costs the client address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Miss {
    /// Under the limit: answered as unknown (550 5.1.1).
    Counted,
    /// The limit is reached with this one: answered as unknown, and the address is refused
    /// for the window from now on.
    LimitReached,
    /// Past the limit: refused (450 4.7.1) like any other recipient.
    Refused,
}

/// Counts an unknown recipient asked for by `client`.
pub async fn unknown_recipient(
    store: &Store,
    policy: &HarvestPolicy,
    client: &str,
) -> Result<Miss> {
    if policy.limit == 0 || client.is_empty() {
        return Ok(Miss::Counted);
    }
    let misses = store
        .record_unknown_recipient(client, policy.window_secs())
        .await?;
    Ok(classify(misses, policy.limit))
}

fn classify(misses: u32, limit: u32) -> Miss {
    match misses.cmp(&limit) {
        std::cmp::Ordering::Less => Miss::Counted,
        std::cmp::Ordering::Equal => Miss::LimitReached,
        std::cmp::Ordering::Greater => Miss::Refused,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limit_counts_unknown_recipients_and_then_refuses() {
        assert_eq!(classify(1, 20), Miss::Counted);
        assert_eq!(classify(19, 20), Miss::Counted);
        assert_eq!(classify(20, 20), Miss::LimitReached);
        assert_eq!(classify(21, 20), Miss::Refused);
    }
}
