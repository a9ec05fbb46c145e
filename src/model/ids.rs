//! Identifier newtypes. They wrap `Arc<str>` because orders, reservations and
//! index entries all copy ids, and a reference-count bump is cheaper than a
//! string copy.

use std::fmt;
use std::sync::Arc;

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
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct SkuKey {
    pub merchant: MerchantId,
    pub sku: Sku,
}

impl SkuKey {
    pub fn new(merchant: &MerchantId, sku: &Sku) -> Self {
        Self {
            merchant: merchant.clone(),
            sku: sku.clone(),
        }
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
