//! The store's error type, and what the domain modules on top of it return (the pure ones
//! have their own small errors, converted here). `grpc::status` maps it to `tonic::Status`,
//! in one place.
use crate::address::AddressError;
use crate::password::PasswordError;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum StoreError {
    #[error(transparent)]
    InvalidAddress(#[from] AddressError),
    #[error("invalid database name {0:?}: database names are [a-z0-9_]+")]
    InvalidDatabaseName(String),
    #[error("domain {0} is not served here")]
    UnknownDomain(String),
    #[error("domain {0} exists already")]
    DomainExists(String),
    #[error("domain {0} still has {1} users or aliases; remove them first")]
    DomainNotEmpty(String, i64),
    #[error("no such user: {0}")]
    UnknownUser(String),
    #[error("address {0} is taken already")]
    AddressTaken(String),
    #[error("no such alias: {0}")]
    UnknownAlias(String),
    #[error("no mailbox for {0}")]
    UnknownRecipient(String),
    #[error(transparent)]
    Password(#[from] PasswordError),
    #[error("mailbox of {0} is over quota")]
    QuotaExceeded(String),
    #[error("message exceeds the maximum size of {0} octets")]
    TooLarge(u64),
    #[error("the maildrop lease was lost")]
    LeaseLost,
    #[error("the queue claim was lost (it ended, and another back-end took the entry)")]
    QueueClaimLost,
    #[error("recipient {0} is refused: {1}")]
    RecipientRefused(String, String),
    #[error("invalid envelope: {0}")]
    InvalidEnvelope(&'static str),
    #[error("no queued message with id {0}")]
    UnknownQueueId(String),
    #[error("no route for {0}")]
    UnknownRoute(String),
    #[error("no connector named {0}")]
    UnknownConnector(String),
    #[error("a connector named {0} exists already")]
    ConnectorExists(String),
    #[error("no group named {0}")]
    UnknownGroup(String),
    #[error("no contact named {0}")]
    UnknownContact(String),
    #[error("{0} has a DKIM key with selector {1} already")]
    DkimSelectorTaken(String, String),
    #[error("{0} has no DKIM key with selector {1}")]
    UnknownDkimKey(String, String),
    #[error("{0} has no new DKIM keys to activate: run `dkim rotate` first, then publish them")]
    NoNextDkimKey(String),
    #[error("an operator named {0} exists already")]
    OperatorExists(String),
    #[error("no operator named {0}")]
    UnknownOperator(String),
    #[error("DKIM: {0}")]
    Dkim(String),
    #[error("message was not found")]
    NoSuchMessage,
    /// The submission token was used before: that delivery (queue id here) stands, this one
    /// was rolled back.
    #[error("submitted before as {0}")]
    DuplicateSubmission(String),
    #[error("database: {0}")]
    Database(#[source] sqlx::Error),
    #[error("database migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        super::note_error(&e);
        StoreError::Database(e)
    }
}
