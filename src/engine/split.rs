//! Auto-split at import (RULES §4): lines whose SKU carries one of the
//! merchant's split tags become child order `<order_id>/<tag>`, each
//! allocated on its own; the parent keeps the untagged lines.

use crate::error::{Error, FieldViolation, Result};
use crate::model::limits::ID_BYTES_MAX;
use crate::model::{Merchant, Order, OrderId, OrderKey, OrderLine, OrderRequest, Timestamp};

use super::allocate::{sku_keys, Imported};
use super::Engine;

/// How one order splits: the parent's own lines, and each child's tag and lines.
pub(super) struct SplitPlan {
    own: Vec<OrderLine>,
    children: Vec<(String, Vec<OrderLine>)>,
}

impl Engine {
    /// How `request` splits under the merchant's rules, or `None` when no
    /// line's SKU carries a split tag. A SKU with several split tags goes
    /// with the first in the merchant's list.
    pub(super) fn split_plan(
        &self,
        request: &OrderRequest,
        merchant: &Merchant,
    ) -> Result<Option<SplitPlan>> {
        if merchant.split_tags.is_empty() {
            return Ok(None);
        }
        let keys = sku_keys(request);
        let tag_of_line: Vec<Option<usize>> = {
            let locked = self.shared.ledger.lock(&keys);
            keys.iter()
                .map(|key| split_tag_of(locked.get(key).map(|r| &r.info.tags), merchant))
                .collect()
        };
        if tag_of_line.iter().all(Option::is_none) {
            return Ok(None);
        }
        let mut plan = SplitPlan {
            own: Vec::new(),
            children: Vec::new(),
        };
        for (tag_index, tag) in merchant.split_tags.iter().enumerate() {
            let lines: Vec<OrderLine> = request
                .lines
                .iter()
                .zip(&tag_of_line)
                .filter(|(_, line_tag)| **line_tag == Some(tag_index))
                .map(|(line, _)| line.clone())
                .collect();
            if !lines.is_empty() {
                plan.children.push((tag.clone(), lines));
            }
        }
        plan.own = request
            .lines
            .iter()
            .zip(&tag_of_line)
            .filter(|(_, tag)| tag.is_none())
            .map(|(line, _)| line.clone())
            .collect();
        for (tag, _) in &plan.children {
            if child_id(&request.order_id, tag).as_str().len() > ID_BYTES_MAX {
                return Err(Error::InvalidArgument(vec![FieldViolation::new(
                    "order.order_id",
                    format!(
                        "too long to auto-split: child id {}/{tag} would exceed {ID_BYTES_MAX} bytes",
                        request.order_id
                    ),
                )]));
            }
        }
        Ok(Some(plan))
    }

    /// Import a split order: the parent first, then each child.
    pub(super) fn import_split(
        &self,
        request: OrderRequest,
        plan: SplitPlan,
        merchant: &Merchant,
        now: Timestamp,
        assess: bool,
    ) -> Result<Imported> {
        if self.shared.orders.get(&request.key()).is_some() {
            // A retry: answer from what is stored, however the tags changed since.
            let (order, _) = self.import(Order::imported(request, now), merchant, false)?;
            return Ok(self.with_children(order));
        }
        let (parent, children) = split_orders(request, plan, now);
        // An order imported directly under a child's id would be mistaken
        // for the child; refuse before storing anything.
        if let Some(taken) = children
            .iter()
            .find(|child| self.shared.orders.get(&child.key()).is_some())
        {
            return Err(Error::AlreadyExists(format!(
                "order {} of merchant {} exists, so order {} cannot be split into it",
                taken.request.order_id, parent.request.merchant_id, parent.request.order_id
            )));
        }
        let mut considered = Vec::new();
        let mut import = |order: Order| -> Result<Order> {
            let (order, assessed) = self.import(order, merchant, assess)?;
            if assess {
                considered.push(assessed);
            }
            Ok(order)
        };
        let order = import(parent)?;
        let children = children
            .into_iter()
            .map(&mut import)
            .collect::<Result<_>>()?;
        Ok(Imported {
            order,
            children,
            considered,
        })
    }
}

/// The orders a split makes, before their first decision: the parent with
/// its own lines (and the request as submitted), then each child.
pub(super) fn split_orders(
    request: OrderRequest,
    plan: SplitPlan,
    now: Timestamp,
) -> (Order, Vec<Order>) {
    let child_ids: Vec<OrderId> = plan
        .children
        .iter()
        .map(|(tag, _)| child_id(&request.order_id, tag))
        .collect();
    let mut parent = Order::imported(
        OrderRequest {
            lines: plan.own,
            ..request.clone()
        },
        now,
    );
    parent.extras_mut().children = child_ids.clone();
    let children = plan
        .children
        .into_iter()
        .zip(child_ids)
        .map(|((_, lines), id)| {
            let mut child = Order::imported(
                OrderRequest {
                    order_id: id,
                    lines,
                    ..request.clone()
                },
                now,
            );
            child.extras_mut().parent = Some(request.order_id.clone());
            child
        })
        .collect();
    parent.extras_mut().submitted = Some(Box::new(request));
    (parent, children)
}

impl Engine {
    /// `order` with the current states of its auto-split children.
    pub(super) fn with_children(&self, order: Order) -> Imported {
        let children = order
            .extras()
            .children
            .iter()
            .filter_map(|id| {
                let key = OrderKey::new(&order.request.merchant_id, id);
                self.shared
                    .orders
                    .get(&key)
                    .map(|child| child.lock().clone())
            })
            .collect();
        Imported {
            order,
            children,
            considered: Vec::new(),
        }
    }
}

/// The index (in the merchant's list) of the first split tag among `tags`.
fn split_tag_of(tags: Option<&Vec<String>>, merchant: &Merchant) -> Option<usize> {
    let tags = tags?;
    merchant
        .split_tags
        .iter()
        .position(|split| tags.contains(split))
}

fn child_id(parent: &OrderId, tag: &str) -> OrderId {
    OrderId::new(&format!("{parent}/{tag}"))
}
