//! The core's errors. The gRPC edge maps each variant to one status code in
//! one place (`grpc::status`); nothing else decides codes.

/// One offending field of a request, named by its path in the request
/// (`order.lines[2].quantity`), as in google.rpc `BadRequest.FieldViolation`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldViolation {
    pub field: String,
    pub description: String,
}

impl FieldViolation {
    pub fn new(field: impl Into<String>, description: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            description: description.into(),
        }
    }
}

#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum Error {
    #[error("invalid argument: {}", describe(.0))]
    InvalidArgument(Vec<FieldViolation>),
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}")]
    AlreadyExists(String),
    #[error("{0}")]
    FailedPrecondition(String),
    /// Too much work at once; the caller should retry later.
    #[error("{0}")]
    Contended(String),
    /// The service cannot do this now (recovering, shutting down, a disk
    /// failure); the same request may succeed later or elsewhere.
    #[error("{0}")]
    Unavailable(String),
    /// A limit on what the server takes at once was reached (requests in
    /// progress, a subscriber's backlog); retry with backoff.
    #[error("{0}")]
    Exhausted(String),
    /// A position outside what the server still has (a change-feed
    /// sequence older than the retained journal).
    #[error("{0}")]
    OutOfRange(String),
    /// A bug on the server's side (a task that panicked).
    #[error("{0}")]
    Internal(String),
}

fn describe(violations: &[FieldViolation]) -> String {
    violations
        .iter()
        .map(|v| format!("{}: {}", v.field, v.description))
        .collect::<Vec<_>>()
        .join("; ")
}

impl Error {
    pub fn invalid(field: impl Into<String>, description: impl Into<String>) -> Self {
        Self::InvalidArgument(vec![FieldViolation::new(field, description)])
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
