//! What the mail protocols and the back-ends say to each other (pure types): an envelope and
//! its recipients, a recipient's verdict, a login's result. The SMTP session and the gRPC
//! client both speak them; neither imports the other for them.
use std::time::Duration;

/// The back-end's verdict on one recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RcptVerdict {
    Accept(String),
    UnknownLocal,
    RelayDenied,
    OverQuota,
    /// A group whose sender policy refuses this sender.
    SenderRefused,
    BadSyntax(String),
    /// The client address asked for too many unknown recipients (harvesting).
    Throttled,
    Unavailable,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthResult {
    Ok {
        user: String,
        addresses: Vec<String>,
    },
    Failed,
    Unavailable,
}

/// An accepted recipient: the address as the back-end named it, and its RFC 3461 DSN
/// parameters.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Recipient {
    pub address: String,
    /// NOTIFY as bits: 1 SUCCESS, 2 FAILURE, 4 DELAY, 8 NEVER (0: not given).
    pub notify: u32,
    /// ORCPT as given ("" when not).
    pub orcpt: String,
}

/// What the back-end gets with a message.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Envelope {
    pub mail_from: String,
    pub recipients: Vec<Recipient>,
    pub ret: String,
    pub envid: String,
    pub body: String,
    pub smtputf8: bool,
    /// RFC 8689: only over verified TLS on the way out.
    pub requiretls: bool,
    pub helo: String,
    pub protocol: String,
    pub tls: String,
    pub auth_user: String,
    pub submission: bool,
    /// Not empty: a milter quarantined the message for this reason (stored held).
    pub quarantine: String,
}

/// A back-end's answer on one recipient, and whether it may be given again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub verdict: RcptVerdict,
    pub reusable: bool,
    /// Non-zero: refuse every RCPT from this client address for this long (harvesting).
    pub penalty: Duration,
}
