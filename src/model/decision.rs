//! Why an order stands as it does (RULES §11): the rule behind its state,
//! and, from the call that decided it, the candidate FCs as the decision
//! saw them.
//!
//! The rule is read off the order itself (status, exception reasons,
//! allocations, acknowledgement): the policy is deterministic, so each
//! outcome has one rule, and nothing needs storing per order. The FC
//! assessments are what the policy's stock matrix held when it decided;
//! they are not kept, so they come only with the answer of the deciding
//! call and with `ExplainOrder`.

use super::{Acknowledgement, ExceptionReason, FcId, Order, OrderStatus, RoutingStrategy, Sku};

/// Most candidate FCs one decision lists: chosen ones first, then by rank.
pub const DECISION_FCS_MAX: usize = 16;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum DecisionRule {
    SingleFc,
    AssignedFc,
    SplitFewestFcs,
    Partial,
    SplitNotAllowed,
    InsufficientNetwork,
    InsufficientAtAssignedFc,
    OnHold,
    MarketplaceCancelled,
    MarketplaceRejected,
    /// A FIFO release gave units this order held to older orders.
    Fifo,
    /// A count removed units this order had reserved.
    InventoryShortage,
    /// Every line went to auto-split children.
    SplitIntoChildren,
}

impl DecisionRule {
    /// The rule behind an order's current state; `None` for orders no rule
    /// placed where they are (shipped, completed, cancelled by a person).
    pub fn of(order: &Order) -> Option<Self> {
        let reasons = || order.exceptions.iter().map(|line| line.reason);
        let reason_rule = |reason| match reason {
            ExceptionReason::InsufficientAtAssignedFc => Self::InsufficientAtAssignedFc,
            ExceptionReason::SplitNotAllowed => Self::SplitNotAllowed,
            ExceptionReason::InsufficientNetworkInventory => Self::InsufficientNetwork,
            ExceptionReason::PreemptedByFifo => Self::Fifo,
            ExceptionReason::InventoryShortage => Self::InventoryShortage,
        };
        Some(match order.status {
            OrderStatus::Processing if order.request.lines.is_empty() => Self::SplitIntoChildren,
            OrderStatus::Processing if order.request.assigned_fc.is_some() => Self::AssignedFc,
            OrderStatus::Processing if order.holds_units_at_several_fcs() => Self::SplitFewestFcs,
            OrderStatus::Processing => Self::SingleFc,
            OrderStatus::PartiallyAllocated => reasons()
                .map(reason_rule)
                .find(|rule| matches!(rule, Self::Fifo | Self::InventoryShortage))
                .unwrap_or(Self::Partial),
            OrderStatus::Exception => reasons()
                .next()
                .map_or(Self::InsufficientNetwork, reason_rule),
            OrderStatus::OnHold => Self::OnHold,
            OrderStatus::Rejected => Self::MarketplaceRejected,
            OrderStatus::Cancelled => match order.acknowledgement {
                Acknowledgement::CancelledUnknownSku | Acknowledgement::CancelledNoInventory => {
                    Self::MarketplaceCancelled
                }
                _ => return None,
            },
            OrderStatus::Shipped | OrderStatus::Completed => return None,
        })
    }
}

/// One candidate FC, as the decision saw it.
#[derive(Clone, PartialEq, Debug)]
pub struct FcAssessment {
    pub fc: FcId,
    pub chosen: bool,
    /// 1 = the most preferred candidate.
    pub rank: u32,
    /// From the order's `ship_to`, when routing by distance and the FC's
    /// location is known.
    pub distance_km: Option<f64>,
    pub can_fill_order: bool,
    /// The FC had taken its daily capacity of orders, so the decision
    /// passed it over whatever stock it holds (RULES §12).
    pub at_capacity: bool,
    /// The lines this FC holds fewer units of than the order needs.
    pub short: Vec<LineShortfall>,
}

#[derive(Clone, PartialEq, Eq, Debug)]
pub struct LineShortfall {
    pub sku: Sku,
    pub needed: u32,
    pub available: u32,
}

/// What a decision weighed: the routing strategy it used and the candidate
/// FCs (chosen first, then by rank, at most `DECISION_FCS_MAX`; empty when
/// no FC was weighed: a hold, a marketplace refusal).
#[derive(Clone, PartialEq, Debug, Default)]
pub struct Considered {
    pub strategy: RoutingStrategy,
    pub fcs: Vec<FcAssessment>,
}

/// FCs the order holds units at, in allocation order, each once.
fn chosen_fcs(order: &Order) -> Vec<FcId> {
    let mut fcs: Vec<FcId> = Vec::new();
    for allocation in &order.allocations {
        if !fcs.contains(&allocation.fc) {
            fcs.push(allocation.fc);
        }
    }
    fcs
}

fn list(fcs: &[FcId]) -> String {
    fcs.iter()
        .map(|fc| fc.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// One line a person can read about why `order` stands as it does under
/// `rule`. Drawn from the order alone, so it reads the same in the answer
/// of the deciding call and in every later read; the numbers behind it are
/// in the decision's FC assessments and in `ExplainOrder`.
pub fn summary(rule: DecisionRule, order: &Order) -> String {
    let chosen = chosen_fcs(order);
    let allocated = order.allocated_units();
    let short: u64 = order
        .exceptions
        .iter()
        .map(|line| u64::from(line.quantity))
        .sum();
    match rule {
        DecisionRule::SingleFc => match chosen.first() {
            Some(fc) => format!("{fc} is the most preferred FC that holds every line"),
            None => "nothing is left to allocate".to_string(),
        },
        DecisionRule::AssignedFc => {
            let fc = order.request.assigned_fc.map_or("", FcId::as_str);
            format!("assigned FC {fc} holds every line")
        }
        DecisionRule::SplitFewestFcs => format!(
            "no FC holds every line; split across {} FCs ({}), the fewest that cover the order",
            chosen.len(),
            list(&chosen)
        ),
        DecisionRule::Partial => format!(
            "the network is short: {allocated} units allocated from {}, {short} wait for stock",
            list(&chosen)
        ),
        DecisionRule::SplitNotAllowed => {
            "the network holds every line but no FC holds them all, and the order may not split"
                .to_string()
        }
        DecisionRule::InsufficientNetwork => {
            "the network does not hold every line; nothing is allocated (partial shipments \
             are off, or no FC has any of it)"
                .to_string()
        }
        DecisionRule::InsufficientAtAssignedFc => {
            let fc = order.request.assigned_fc.map_or("", FcId::as_str);
            format!("assigned FC {fc} cannot fill the whole order")
        }
        DecisionRule::OnHold => {
            format!(
                "on hold: {}",
                order.hold_reason().unwrap_or("no reason given")
            )
        }
        DecisionRule::MarketplaceCancelled => match order.acknowledgement {
            Acknowledgement::CancelledUnknownSku => {
                "cancelled for the marketplace: a SKU is unknown".to_string()
            }
            _ => "cancelled for the marketplace: out of stock and not replenishable".to_string(),
        },
        DecisionRule::MarketplaceRejected => {
            "rejected for the marketplace: a SKU is out of stock and not replenishable".to_string()
        }
        DecisionRule::Fifo => {
            format!("a FIFO release gave {short} of its units to older orders")
        }
        DecisionRule::InventoryShortage => {
            format!("a count removed {short} units it had reserved")
        }
        DecisionRule::SplitIntoChildren => "every line went to auto-split children".to_string(),
    }
}
