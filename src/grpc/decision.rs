//! Decisions, explanations and simulations to protobuf (RULES §11).

use crate::engine::{Explanation, Simulation};
use crate::model::{self, Considered, DecisionRule, FcAssessment, Order, Timestamp};

use super::convert::{fc_stocks_to_proto, order_to_proto, routing_to_proto};
use super::proto;

/// Most resulting orders one `SimulateSettings` answer carries.
pub const SIMULATION_ORDERS_MAX: u32 = 1_000;

/// The rule behind `order`'s state, with what the decision that placed it
/// weighed (when the caller has it: the deciding call, `ExplainOrder`) and
/// a line for people. `None` for orders no rule placed where they are.
pub fn decision_to_proto(
    order: &Order,
    considered: Option<&Considered>,
) -> Option<proto::Decision> {
    let rule = DecisionRule::of(order)?;
    let (strategy, fcs) = match considered {
        Some(considered) => (
            routing_to_proto(considered.strategy),
            considered.fcs.iter().map(assessment_to_proto).collect(),
        ),
        None => (proto::RoutingStrategy::Ranked, Vec::new()),
    };
    Some(proto::Decision {
        rule: rule_to_proto(rule) as i32,
        strategy: strategy as i32,
        fcs,
        summary: model::summary(rule, order),
    })
}

/// The rule alone, for the lean view: no summary to format.
pub fn rule_only(order: &Order) -> Option<proto::Decision> {
    DecisionRule::of(order).map(|rule| proto::Decision {
        rule: rule_to_proto(rule) as i32,
        ..Default::default()
    })
}

fn assessment_to_proto(assessed: &FcAssessment) -> proto::FcAssessment {
    proto::FcAssessment {
        fc_id: assessed.fc.to_string(),
        chosen: assessed.chosen,
        rank: assessed.rank,
        distance_km: assessed.distance_km,
        can_fill_order: assessed.can_fill_order,
        at_capacity: assessed.at_capacity,
        short: assessed
            .short
            .iter()
            .map(|line| proto::LineShortfall {
                sku: line.sku.to_string(),
                needed: line.needed,
                available: line.available.into(),
            })
            .collect(),
    }
}

fn rule_to_proto(rule: DecisionRule) -> proto::DecisionRule {
    use proto::DecisionRule as P;
    match rule {
        DecisionRule::SingleFc => P::SingleFc,
        DecisionRule::AssignedFc => P::AssignedFc,
        DecisionRule::SplitFewestFcs => P::SplitFewestFcs,
        DecisionRule::Partial => P::Partial,
        DecisionRule::SplitNotAllowed => P::SplitNotAllowed,
        DecisionRule::InsufficientNetwork => P::InsufficientNetwork,
        DecisionRule::InsufficientAtAssignedFc => P::InsufficientAtAssignedFc,
        DecisionRule::OnHold => P::OnHold,
        DecisionRule::MarketplaceCancelled => P::MarketplaceCancelled,
        DecisionRule::MarketplaceRejected => P::MarketplaceRejected,
        DecisionRule::Fifo => P::Fifo,
        DecisionRule::InventoryShortage => P::InventoryShortage,
        DecisionRule::SplitIntoChildren => P::SplitIntoChildren,
    }
}

pub fn explanation_to_proto(explanation: &Explanation, as_of: Timestamp) -> proto::Explanation {
    proto::Explanation {
        order: Some(order_to_proto(&explanation.order, as_of)),
        now: explanation
            .now
            .as_ref()
            .and_then(|(order, considered)| decision_to_proto(order, Some(considered))),
        lines: explanation
            .lines
            .iter()
            .map(|view| proto::LineStock {
                sku: view.sku.to_string(),
                fcs: fc_stocks_to_proto(view),
            })
            .collect(),
    }
}

pub fn simulation_to_proto(simulation: &Simulation, as_of: Timestamp) -> proto::SimulationResult {
    let counts = simulation.counts;
    let count = |n: u64| u32::try_from(n).unwrap_or(u32::MAX);
    proto::SimulationResult {
        examined: count(counts.examined),
        would_allocate: count(counts.allocated),
        would_partially_allocate: count(counts.partially_allocated),
        would_stay: count(counts.still_in_exception),
        would_split: count(simulation.split),
        orders: simulation
            .orders
            .iter()
            .map(|order| order_to_proto(order, as_of))
            .collect(),
    }
}
