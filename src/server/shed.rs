//! Load shedding: at most `limit` requests in progress across all
//! connections; one more is answered at once with RESOURCE_EXHAUSTED
//! (never queued), and counted like any other answer.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use tonic::codegen::http;
use tower::limit::GlobalConcurrencyLimitLayer;
use tower::load_shed::LoadShed;
use tower::{BoxError, Layer, Service};

use crate::error::Error;
use crate::telemetry::{names, Telemetry};

#[derive(Clone)]
pub struct ShedLayer {
    limit: usize,
    concurrency: GlobalConcurrencyLimitLayer,
}

impl ShedLayer {
    pub fn new(limit: usize) -> Self {
        Self {
            limit,
            concurrency: GlobalConcurrencyLimitLayer::new(limit),
        }
    }
}

impl<S> Layer<S> for ShedLayer {
    type Service = Shed<S>;

    fn layer(&self, inner: S) -> Shed<S> {
        Shed {
            limit: self.limit,
            inner: LoadShed::new(self.concurrency.layer(inner)),
        }
    }
}

#[derive(Clone)]
pub struct Shed<S> {
    limit: usize,
    inner: LoadShed<tower::limit::ConcurrencyLimit<S>>,
}

impl<S, B, R> Service<http::Request<B>> for Shed<S>
where
    S: Service<http::Request<B>, Response = http::Response<R>>,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
    R: Default + Send + 'static,
{
    type Response = http::Response<R>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, context: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(context)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        // Such as `/allocation.v1.AllocationService/Allocate`.
        let path = request.uri().path().to_string();
        let limit = self.limit;
        let answer = self.inner.call(request);
        Box::pin(async move {
            match answer.await {
                Err(error) if error.is::<tower::load_shed::error::Overloaded>() => {
                    let refused = tonic::Status::from(Error::Exhausted(format!(
                        "the server has {limit} requests in progress across all connections \
                         (--concurrency-limit); retry with backoff"
                    )));
                    Telemetry::get().start_path(&path).finish(refused.code());
                    metrics::counter!(names::REQUESTS_SHED).increment(1);
                    Ok(refused.into_http())
                }
                other => other,
            }
        })
    }
}
