//! Identifier newtypes. They wrap `Arc<str>` because orders, reservations and
//! index entries all copy ids, and a reference-count bump is cheaper than a
//! string copy.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::{Arc, LazyLock};

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(Arc<str>);

        impl $name {
            pub fn new(id: &str) -> Self {
                Self(Arc::from(id))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(&*self.0, f)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl From<&str> for $name {
            fn from(id: &str) -> Self {
                Self::new(id)
            }
        }
    };
}

id_type!(
    /// A merchant (a client of the fulfillment network).
    MerchantId
);
id_type!(
    /// An order id, unique within its merchant.
    OrderId
);
id_type!(
    /// A stock-keeping unit code, unique within its merchant.
    Sku
);

/// Inventory is owned per merchant: two merchants may use the same SKU code
/// for different products.
///
/// The key carries the hash of its two strings, computed once when it is
/// made: an allocation looks a line's key up several times (to lock its
/// stripe, to check it, to reserve), and each look-up used to hash both
/// strings again. The hash is keyed per process, so clients cannot choose
/// SKU codes that collide.
#[derive(Clone, Debug)]
pub struct SkuKey {
    merchant: MerchantId,
    sku: Sku,
    hash: u64,
}

impl SkuKey {
    pub fn new(merchant: &MerchantId, sku: &Sku) -> Self {
        static HASHER: LazyLock<foldhash::fast::RandomState> = LazyLock::new(Default::default);
        Self {
            merchant: merchant.clone(),
            sku: sku.clone(),
            hash: HASHER.hash_one((merchant.as_str(), sku.as_str())),
        }
    }

    pub fn merchant(&self) -> &MerchantId {
        &self.merchant
    }

    pub fn sku(&self) -> &Sku {
        &self.sku
    }

    /// The key's hash (the same for equal keys within this process).
    pub fn hash_value(&self) -> u64 {
        self.hash
    }
}

impl PartialEq for SkuKey {
    fn eq(&self, other: &Self) -> bool {
        self.hash == other.hash && self.merchant == other.merchant && self.sku == other.sku
    }
}

impl Eq for SkuKey {}

impl Hash for SkuKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.hash);
    }
}

/// By merchant, then SKU: the order listings and snapshots use.
impl Ord for SkuKey {
    fn cmp(&self, other: &Self) -> Ordering {
        (&self.merchant, &self.sku).cmp(&(&other.merchant, &other.sku))
    }
}

impl PartialOrd for SkuKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Orders are unique per (merchant, order id).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct OrderKey {
    pub merchant: MerchantId,
    pub order: OrderId,
}

impl OrderKey {
    pub fn new(merchant: &MerchantId, order: &OrderId) -> Self {
        Self {
            merchant: merchant.clone(),
            order: order.clone(),
        }
    }
}
