//! Time as the core sees it. The core never reads the clock: every operation
//! that depends on "now" takes it as a parameter, so tests and replays are
//! reproducible.

use std::time::{SystemTime, UNIX_EPOCH};

/// An instant with nanosecond precision, ordered. The fields mirror
/// `google.protobuf.Timestamp` so conversion is lossless.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default)]
pub struct Timestamp {
    pub seconds: i64,
    /// Always in `0..1_000_000_000` (checked at the edge).
    pub nanos: u32,
}

impl Timestamp {
    pub const fn from_seconds(seconds: i64) -> Self {
        Self { seconds, nanos: 0 }
    }

    /// The wall clock. Only the edge calls this, to fill in a missing `as_of`.
    pub fn now() -> Self {
        match SystemTime::now().duration_since(UNIX_EPOCH) {
            Ok(since) => Self {
                seconds: since.as_secs() as i64,
                nanos: since.subsec_nanos(),
            },
            // A clock before 1970 is a broken host; time zero is a safe answer.
            Err(_) => Self::default(),
        }
    }
}
