//! What a local address names (pure): a mailbox, a distribution group, a contact, or
//! nothing. The store finds it (`Store::lookup`), the directory and the relay policy judge by
//! it; it lives apart from both so that neither imports the other for it.

/// What a local address is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// A mailbox (an account, directly or through an alias): id, address, over quota.
    Mailbox(i64, String, bool),
    Group {
        id: i64,
        policy: String,
    },
    Contact {
        external: String,
    },
    None,
}
