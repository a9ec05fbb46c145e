//! Merchant settings: how a merchant wants its orders allocated.

use super::{FcId, MerchantId, RoutingStrategy};

/// How replenished stock is shared between waiting orders (RULES §5).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, Hash)]
pub enum FifoStrategy {
    /// Orders take stock in the order they are processed (the seed's default).
    #[default]
    None,
    /// Oldest orders first, and an order takes stock only if it can be filled whole.
    Full,
    /// Oldest orders first, taking whatever is there even if lines stay short.
    Partial,
}

#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Merchant {
    pub merchant_id: MerchantId,
    /// May an order ship from several FCs, or ship what is there now?
    pub partial_shipments: bool,
    pub fifo_strategy: FifoStrategy,
    /// FC ids, most preferred first. FCs not listed rank after them, by id.
    pub fc_priority: Vec<FcId>,
    /// Marketplace orders are acknowledged (or refused) on import.
    pub auto_acknowledge: bool,
    /// With `auto_acknowledge`, accept marketplace orders even without stock.
    pub accept_regardless_of_inventory: bool,
    /// Auto-split rules: lines whose SKU carries one of these tags become a child order.
    pub split_tags: Vec<String>,
    /// How to choose among the FCs that can ship an order (RULES §12).
    pub routing: RoutingStrategy,
}

impl Merchant {
    /// The settings of a merchant that was never upserted.
    pub fn with_defaults(merchant_id: MerchantId) -> Self {
        Self {
            merchant_id,
            partial_shipments: false,
            fifo_strategy: FifoStrategy::None,
            fc_priority: Vec::new(),
            auto_acknowledge: false,
            accept_regardless_of_inventory: false,
            split_tags: Vec::new(),
            routing: RoutingStrategy::Ranked,
        }
    }

    /// Rank of an FC for this merchant: listed FCs by position, others after
    /// them. Ties between unlisted FCs are broken by FC id by the caller.
    pub fn fc_rank(&self, fc: &FcId) -> usize {
        self.fc_priority
            .iter()
            .position(|listed| listed == fc)
            .unwrap_or(self.fc_priority.len())
    }
}
