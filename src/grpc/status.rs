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

/// A request message that does not decode: the client's mistake.
pub fn undecodable(status: Status) -> Status {
    Status::invalid_argument(format!(
        "the request message does not decode: {}",
        status.message()
    ))
}

/// tonic refuses a message over the size limit with OUT_OF_RANGE before
/// any of our code runs; gRPC's convention (and ours) is RESOURCE_EXHAUSTED.
/// Applied to every response's trailers-only status.
pub fn size_limit_as_resource_exhausted<B>(
    mut response: tonic::codegen::http::Response<B>,
) -> tonic::codegen::http::Response<B> {
    let headers = response.headers_mut();
    let over_limit = headers.get("grpc-status").is_some_and(|code| code == "11")
        && headers
            .get("grpc-message")
            .and_then(|message| message.to_str().ok())
            .is_some_and(|message| message.contains("message length too large"));
    if over_limit {
        let code = (Code::ResourceExhausted as i32).to_string();
        headers.insert(
            "grpc-status",
            code.parse().expect("digits are a header value"),
        );
    }
    response
}
