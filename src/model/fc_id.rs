//! Fulfillment-center ids, interned: an `FcId` is a 4-byte number standing
//! for a name held once per process.
//!
//! Why: every stock row and every allocation carries an FC, and a network has
//! a handful of FCs. As a string (even a shared `Arc<str>`) each copy costs a
//! 16-byte fat pointer and an atomic reference count that every core
//! increments on the same cache line; as a number it costs 4 bytes and
//! nothing to copy. Names are compared only to order FCs (rows stay sorted by
//! name, so every listing and tie-break is the same as with strings).
//!
//! The table never forgets a name, so it is bounded: at most
//! [`FC_IDS_MAX`] distinct names per process. That bounds what a client who
//! invents FC names can make the service hold (`FC_IDS_MAX` × the longest id).

use std::collections::HashMap;
use std::fmt;
use std::sync::{LazyLock, OnceLock};

use parking_lot::RwLock;

/// Most distinct FC names one process will intern.
pub const FC_IDS_MAX: usize = 1 << 16;

/// Names by number. A slot is written once, before its number is handed out,
/// so reading a name needs no lock.
static NAMES: [OnceLock<Box<str>>; FC_IDS_MAX] = [const { OnceLock::new() }; FC_IDS_MAX];

/// Numbers by name; taken for writing only when a new name arrives.
static NUMBERS: LazyLock<RwLock<HashMap<&'static str, u32>>> = LazyLock::new(Default::default);

/// A fulfillment center.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct FcId(u32);

/// The process already knows [`FC_IDS_MAX`] FC names and was given another.
#[derive(Debug, PartialEq, Eq)]
pub struct TooManyFcs;

impl fmt::Display for TooManyFcs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the service already knows {FC_IDS_MAX} fulfillment centers, its limit"
        )
    }
}

impl FcId {
    /// The id of `name`, interning it if it is new.
    pub fn intern(name: &str) -> Result<Self, TooManyFcs> {
        if let Some(&number) = NUMBERS.read().get(name) {
            return Ok(Self(number));
        }
        let mut numbers = NUMBERS.write();
        if let Some(&number) = numbers.get(name) {
            return Ok(Self(number));
        }
        let number = numbers.len();
        let stored: &'static str = NAMES
            .get(number)
            .ok_or(TooManyFcs)?
            .get_or_init(|| name.into());
        // `number < FC_IDS_MAX = 2^16`, so it fits.
        let number = number as u32;
        numbers.insert(stored, number);
        Ok(Self(number))
    }

    /// [`FcId::intern`] for names known to be few: tests, benchmarks, tools.
    ///
    /// # Panics
    /// When the process already holds [`FC_IDS_MAX`] other names.
    pub fn new(name: &str) -> Self {
        Self::intern(name).expect("FC names within the interning limit")
    }

    /// The dense number it was interned as (0, 1, 2, … in order of first
    /// use): an index for per-FC tables.
    pub fn number(self) -> usize {
        self.0 as usize
    }

    pub fn as_str(self) -> &'static str {
        // An id is handed out only after its slot is filled, and slots are
        // never emptied, so the slot of an existing id always holds its name.
        NAMES[self.0 as usize].get().map_or("", |name| name)
    }
}

impl Ord for FcId {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        if self.0 == other.0 {
            return std::cmp::Ordering::Equal;
        }
        self.as_str().cmp(other.as_str())
    }
}

impl PartialOrd for FcId {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl AsRef<str> for FcId {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl fmt::Debug for FcId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for FcId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_name_gets_the_same_id_and_ids_order_by_name() {
        let b = FcId::new("fc-id-test-b");
        let a = FcId::new("fc-id-test-a");
        assert_eq!(FcId::new("fc-id-test-b"), b);
        assert_ne!(a, b);
        assert_eq!(a.as_str(), "fc-id-test-a");
        assert!(a < b, "interned later, named earlier: ordered by name");
        assert_eq!(format!("{b}"), "fc-id-test-b");
    }
}
