//! The one place where back-end errors become gRPC statuses. A lost lease or claim is
//! `ABORTED` (a concurrency conflict: start again), a recipient refused at the end of DATA
//! `FAILED_PRECONDITION` (what was checked no longer holds): the front-end tells them apart.
use crate::password::PasswordError;
use crate::store::StoreError;
use tonic::{Code, Status};

impl From<StoreError> for Status {
    fn from(e: StoreError) -> Status {
        let code = match &e {
            StoreError::InvalidAddress(_)
            | StoreError::InvalidDatabaseName(_)
            | StoreError::Password(PasswordError::Length)
            | StoreError::InvalidEnvelope(_) => Code::InvalidArgument,
            StoreError::UnknownDomain(_)
            | StoreError::UnknownUser(_)
            | StoreError::UnknownAlias(_)
            | StoreError::UnknownRecipient(_)
            | StoreError::NoSuchMessage
            | StoreError::UnknownQueueId(_)
            | StoreError::UnknownRoute(_)
            | StoreError::UnknownConnector(_)
            | StoreError::UnknownGroup(_)
            | StoreError::UnknownContact(_)
            | StoreError::UnknownOperator(_)
            | StoreError::UnknownDkimKey(..) => Code::NotFound,
            StoreError::DomainExists(_)
            | StoreError::AddressTaken(_)
            | StoreError::ConnectorExists(_)
            | StoreError::OperatorExists(_)
            | StoreError::DuplicateSubmission(_)
            | StoreError::DkimSelectorTaken(..) => Code::AlreadyExists,
            StoreError::DomainNotEmpty(..)
            | StoreError::RecipientRefused(..)
            | StoreError::NoNextDkimKey(_) => Code::FailedPrecondition,
            StoreError::LeaseLost | StoreError::QueueClaimLost => Code::Aborted,
            StoreError::QuotaExceeded(_) => Code::ResourceExhausted,
            StoreError::TooLarge(_) => Code::OutOfRange,
            StoreError::Database(_) => Code::Unavailable,
            StoreError::Password(PasswordError::Hash(_))
            | StoreError::Migrate(_)
            | StoreError::Dkim(_) => Code::Internal,
        };
        if code == Code::Unavailable || code == Code::Internal {
            tracing::error!(error = %e, "request failed");
        }
        Status::new(code, e.to_string())
    }
}
