//! The one mapping from core errors to gRPC statuses (SPEC §8).

use prost::Message;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use crate::error::Error;

impl From<Error> for Status {
    fn from(error: Error) -> Self {
        let message = error.to_string();
        match error {
            Error::InvalidArgument(violations) => {
                let violations: Vec<tonic_types::FieldViolation> = violations
                    .into_iter()
                    .map(|v| tonic_types::FieldViolation::new(v.field, v.description))
                    .collect();
                Status::with_error_details(
                    Code::InvalidArgument,
                    message,
                    ErrorDetails::with_bad_request(violations),
                )
            }
            Error::NotFound(_) => Status::not_found(message),
            Error::AlreadyExists(_) => Status::already_exists(message),
            Error::FailedPrecondition(_) => Status::failed_precondition(message),
            Error::Contended(_) => Status::aborted(message),
            Error::Unavailable(_) => Status::unavailable(message),
        }
    }
}

/// A status as a `google.rpc.Status` message, details included, for the
/// per-order errors inside an `AllocateBatch` response.
pub fn to_rpc_status(status: &Status) -> tonic_types::pb::Status {
    // tonic carries the details as an encoded google.rpc.Status already.
    match tonic_types::pb::Status::decode(status.details()) {
        Ok(rpc) if !status.details().is_empty() => rpc,
        _ => tonic_types::pb::Status {
            code: status.code() as i32,
            message: status.message().to_string(),
            details: Vec::new(),
        },
    }
}
