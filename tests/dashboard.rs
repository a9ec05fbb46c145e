//! deploy/grafana-dashboard.json against a real server: every panel query
//! parses as PromQL, and every metric, label and label value it selects on
//! is in the first scrape of a freshly started server (so a renamed metric
//! or label breaks this test, not the dashboard in production).

#[path = "support/binary.rs"]
mod binary;
#[path = "support/scrape.rs"]
mod scrape;

use std::collections::{BTreeMap, BTreeSet};

use binary::Binary;
use promql_parser::label::MatchOp;
use promql_parser::parser::{self, Expr, LabelModifier, VectorSelector};
use promql_parser::util::{walk_expr, ExprVisitor};
use scrape::{scrape, series, Series};

/// Every `expr` string anywhere in the dashboard (panels, rows, targets).
fn expressions(dashboard: &serde_json::Value) -> Vec<String> {
    fn walk(value: &serde_json::Value, out: &mut Vec<String>) {
        match value {
            serde_json::Value::Object(map) => {
                for (key, value) in map {
                    match (key.as_str(), value) {
                        ("expr", serde_json::Value::String(expr)) => out.push(expr.clone()),
                        _ => walk(value, out),
                    }
                }
            }
            serde_json::Value::Array(items) => items.iter().for_each(|item| walk(item, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(dashboard, &mut out);
    out
}

fn dashboard() -> serde_json::Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/grafana-dashboard.json");
    let text = std::fs::read_to_string(path).unwrap();
    serde_json::from_str(&text).expect("the dashboard is valid JSON")
}

/// What a scrape exports: metric name → label name → values seen.
struct Exported(BTreeMap<String, BTreeMap<String, BTreeSet<String>>>);

impl Exported {
    fn new(series: &[Series]) -> Self {
        let mut names: BTreeMap<String, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
        for one in series {
            let labels = names.entry(one.name.clone()).or_default();
            for (key, value) in &one.labels {
                labels.entry(key.clone()).or_default().insert(value.clone());
            }
        }
        Exported(names)
    }
}

/// The selectors under an expression, and the grouping (`by`, `on`)
/// labels that must be on every one of them.
#[derive(Default)]
struct Uses {
    selectors: Vec<VectorSelector>,
    /// (label, the selectors it groups or matches).
    grouping: Vec<(String, Vec<String>)>,
}

impl ExprVisitor for Uses {
    type Error = String;

    fn pre_visit(&mut self, expr: &Expr) -> Result<bool, String> {
        let grouped = |labels: Option<&LabelModifier>, under: &[&Expr]| match labels {
            Some(LabelModifier::Include(labels)) => {
                let names: Vec<String> = under
                    .iter()
                    .flat_map(|expr| selectors(expr))
                    .filter_map(|selector| selector.name)
                    .collect();
                labels
                    .labels
                    .iter()
                    .map(|label| (label.clone(), names.clone()))
                    .collect()
            }
            _ => Vec::new(),
        };
        match expr {
            Expr::VectorSelector(selector) => self.selectors.push(selector.clone()),
            Expr::MatrixSelector(matrix) => self.selectors.push(matrix.vs.clone()),
            Expr::Aggregate(aggregate) => self
                .grouping
                .extend(grouped(aggregate.modifier.as_ref(), &[&*aggregate.expr])),
            Expr::Binary(binary) => {
                if let Some(modifier) = &binary.modifier {
                    self.grouping.extend(grouped(
                        modifier.matching.as_ref(),
                        &[&*binary.lhs, &*binary.rhs],
                    ))
                }
            }
            _ => {}
        }
        Ok(true)
    }
}

fn selectors(expr: &Expr) -> Vec<VectorSelector> {
    let mut uses = Uses::default();
    walk_expr(&mut uses, expr).unwrap();
    uses.selectors
}

/// Every problem with `exprs` against what the server exported.
fn problems(exprs: &[String], exported: &Exported) -> Vec<String> {
    let mut problems = Vec::new();
    for text in exprs {
        let expr = match parser::parse(text) {
            Ok(expr) => expr,
            Err(error) => {
                problems.push(format!("{text}: not PromQL: {error}"));
                continue;
            }
        };
        let mut uses = Uses::default();
        walk_expr(&mut uses, &expr).unwrap();
        for selector in &uses.selectors {
            let Some(name) = &selector.name else {
                problems.push(format!("{text}: a selector without a metric name"));
                continue;
            };
            let Some(labels) = exported.0.get(name) else {
                problems.push(format!("{text}: the server exports no `{name}`"));
                continue;
            };
            for matcher in &selector.matchers.matchers {
                match (labels.get(&matcher.name), &matcher.op) {
                    (None, _) => {
                        problems.push(format!("{text}: `{name}` has no label `{}`", matcher.name))
                    }
                    (Some(values), MatchOp::Equal) if !values.contains(&matcher.value) => problems
                        .push(format!(
                            "{text}: `{name}` never has {}=\"{}\" (only {values:?})",
                            matcher.name, matcher.value
                        )),
                    (Some(values), MatchOp::NotEqual) if !values.contains(&matcher.value) => {
                        problems.push(format!(
                            "{text}: `{name}` never has {}=\"{}\", so != filters nothing",
                            matcher.name, matcher.value
                        ))
                    }
                    _ => {}
                }
            }
        }
        for (label, names) in &uses.grouping {
            for name in names {
                if exported
                    .0
                    .get(name)
                    .is_some_and(|labels| !labels.contains_key(label))
                {
                    problems.push(format!("{text}: groups by `{label}`, which `{name}` lacks"));
                }
            }
        }
    }
    problems
}

#[tokio::test]
async fn every_dashboard_query_parses_and_uses_only_exported_metrics() {
    let exprs = expressions(&dashboard());
    assert!(exprs.len() >= 20, "found only {} expressions", exprs.len());

    let dir = std::env::temp_dir().join(format!("allocation-dashboard-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let server = Binary::start(&dir, &[]).await;
    // A fresh server: nothing has been asked of it but health checks.
    let exported = Exported::new(&series(&scrape(&server.metrics_address).await));
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);

    let found = problems(&exprs, &exported);
    assert!(found.is_empty(), "{}", found.join("\n"));

    // The check itself can fail: a renamed metric, label or value, or a
    // query that does not parse, is caught.
    for broken in [
        "sum(rate(grpc_server_handled_totals[1m]))",
        "sum by (method) (rate(grpc_server_handled_total[1m]))",
        "rate(grpc_server_handled_total{code!=\"OK\"}[1m])",
        "rate(grpc_server_handling_seconds_count{grpc_type=\"unary_call\"}[1m])",
        "histogram_quantile(0.99, sum by (le) (rate(journal_fsync_seconds_bucket[5m])))",
        "sum by (grpc_method) (rate(grpc_server_handled_total[1m])",
    ] {
        assert_eq!(
            problems(&[broken.to_string()], &exported).len(),
            1,
            "{broken} should have been caught"
        );
    }
}
