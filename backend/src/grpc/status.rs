//! The one place where back-end errors become gRPC statuses.
use crate::error::StoreError;
use tonic::{Code, Status};

impl From<StoreError> for Status {
    fn from(e: StoreError) -> Status {
        let code = match &e {
            StoreError::InvalidAddress(..)
            | StoreError::BadPassword
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
            | StoreError::UnknownContact(_) => Code::NotFound,
            StoreError::DomainExists(_)
            | StoreError::AddressTaken(_)
            | StoreError::ConnectorExists(_)
            | StoreError::DuplicateSubmission(_) => Code::AlreadyExists,
            StoreError::DomainNotEmpty(..)
            | StoreError::LeaseLost
            | StoreError::RecipientRefused(..) => Code::FailedPrecondition,
            StoreError::QuotaExceeded(_) => Code::ResourceExhausted,
            StoreError::TooLarge(_) => Code::OutOfRange,
            StoreError::Database(_) => Code::Unavailable,
            StoreError::Hash(_) | StoreError::Migrate(_) => Code::Internal,
        };
        if code == Code::Unavailable || code == Code::Internal {
            tracing::error!(error = %e, "request failed");
        }
        Status::new(code, e.to_string())
    }
}
