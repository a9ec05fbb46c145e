//! The one mapping from core errors to gRPC statuses (RULES §8).

use http_body_util::BodyExt;
use prost::Message;
use tonic::codegen::http;
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
            Error::Exhausted(_) => Status::resource_exhausted(message),
            Error::OutOfRange(_) => Status::out_of_range(message),
            Error::Internal(_) => Status::internal(message),
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
/// Applied to every response: to its status in the headers (a
/// trailers-only response) or in the trailers.
pub fn size_limit_as_resource_exhausted(
    mut response: http::Response<tonic::body::Body>,
) -> http::Response<tonic::body::Body> {
    size_limit_status(response.headers_mut());
    response.map(|body| {
        tonic::body::Body::new(body.map_frame(|mut frame| {
            if let Some(trailers) = frame.trailers_mut() {
                size_limit_status(trailers);
            }
            frame
        }))
    })
}

fn size_limit_status(headers: &mut http::HeaderMap) {
    let over_limit = headers.get("grpc-status").is_some_and(|code| code == "11")
        && headers
            .get("grpc-message")
            .and_then(|message| message.to_str().ok())
            // Sent percent-encoded (`%20` for a space).
            .is_some_and(|message| {
                message
                    .replace("%20", " ")
                    .contains("message length too large")
            });
    if over_limit {
        let code = (Code::ResourceExhausted as i32).to_string();
        headers.insert(
            "grpc-status",
            code.parse().expect("digits are a header value"),
        );
    }
}
