//! An envelope recipient as it travels from a submission to the queue and out again: the
//! address and its RFC 3461 DSN parameters (pure).

/// One recipient of a message.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Recipient {
    pub address: String,
    /// RFC 3461 NOTIFY as bits: 1 SUCCESS, 2 FAILURE, 4 DELAY, 8 NEVER (0: not given).
    pub notify: u32,
    /// RFC 3461 ORCPT, as given ("" when not given).
    pub orcpt: String,
}

impl Recipient {
    pub fn new(address: impl Into<String>, notify: u32, orcpt: impl Into<String>) -> Recipient {
        Recipient {
            address: address.into(),
            notify,
            orcpt: orcpt.into(),
        }
    }
}
