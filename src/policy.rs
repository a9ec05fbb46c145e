//! The allocation policy: given how many units each line needs and how many
//! each candidate FC has available, decide where every unit ships from, or
//! why it cannot ship yet (RULES §4). Pure arithmetic over indexes: no ids,
//! no locks, no clock, so it is tested and benchmarked on its own.
//!
//! FCs are given already ranked (merchant priority, then FC id); index 0 is
//! the most preferred. "Ties by priority" therefore means "lowest indexes".
//!
//! Closest routing (RULES §12) adds where each FC and the destination are,
//! as unit vectors: among FCs that fill the order the nearest wins (ties by
//! rank); a split takes the fewest FCs, then the smallest total distance,
//! then rank. FCs without a location come after every located one.

use smallvec::SmallVec;

use crate::model::{distance_between, ExceptionReason};

/// Up to this many candidate FCs, splitting finds the truly fewest FCs by
/// trying every combination (at most 2^12 = 4,096 feasibility checks); above
/// it, a greedy cover keeps the cost bounded (it may use one FC more).
pub const EXACT_COVER_FCS_MAX: usize = 12;

/// Per line values, inline for orders of up to eight lines: the policy runs
/// once per decision, and heap buffers per decision showed in profiles.
type PerLine<T> = SmallVec<[T; 8]>;

/// Units needed per line, and units available per (line, FC).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StockMatrix {
    needs: PerLine<u32>,
    fc_count: usize,
    /// Row-major: `available[line * fc_count + fc]`. Inline up to 5 lines
    /// over 12 FCs.
    available: SmallVec<[u32; 60]>,
    /// Closest routing only: where the order goes and where each FC is.
    places: Option<Places>,
}

#[derive(Clone, Debug, PartialEq)]
struct Places {
    destination: [f64; 3],
    /// Per FC, its unit vector; `None`: no known location.
    fcs: SmallVec<[Option<[f64; 3]>; 16]>,
    /// Per FC, how near it is (`nearness`): computed once, compared many times.
    near: SmallVec<[f64; 16]>,
}

// The unit vectors are finite (built from validated coordinates).
impl Eq for Places {}

/// An unlocated FC's nearness: after every located one (whose nearness is
/// the negated dot product with the destination, in −1..=1).
const UNLOCATED: f64 = 2.0;

impl StockMatrix {
    pub fn new(needs: impl IntoIterator<Item = u32>, fc_count: usize) -> Self {
        let needs: PerLine<u32> = needs.into_iter().collect();
        let cells = needs.len() * fc_count;
        Self {
            needs,
            fc_count,
            available: SmallVec::from_elem(0, cells),
            places: None,
        }
    }

    /// Route by distance: the order goes to `destination`; `fcs` gives each
    /// FC's place, in FC order (`None` for an FC with no location).
    pub fn set_places(
        &mut self,
        destination: [f64; 3],
        fcs: impl IntoIterator<Item = Option<[f64; 3]>>,
    ) {
        let fcs: SmallVec<[Option<[f64; 3]>; 16]> = fcs.into_iter().collect();
        debug_assert_eq!(fcs.len(), self.fc_count);
        let to = destination;
        let near = fcs
            .iter()
            .map(|place| match place {
                Some(at) => -(at[0] * to[0] + at[1] * to[1] + at[2] * to[2]),
                None => UNLOCATED,
            })
            .collect();
        self.places = Some(Places {
            destination,
            fcs,
            near,
        });
    }

    /// How far an FC is from the destination, when both places are known.
    pub fn distance_km(&self, fc: usize) -> Option<f64> {
        let places = self.places.as_ref()?;
        places.fcs[fc].map(|place| distance_between(place, places.destination))
    }

    /// How near an FC is, smaller is nearer: the negated dot product of
    /// its place and the destination (monotonic in distance, and no
    /// trigonometry), `UNLOCATED` without a place; 0 for every FC when not
    /// routing by distance.
    fn nearness(&self, fc: usize) -> f64 {
        self.places.as_ref().map_or(0.0, |places| places.near[fc])
    }

    /// (FCs without a location, total distance of the located ones).
    fn spread(&self, fcs: &[usize]) -> (usize, f64) {
        fcs.iter().fold((0, 0.0), |(unlocated, km), &fc| {
            match self.distance_km(fc) {
                Some(distance) => (unlocated, km + distance),
                None => (unlocated + 1, km),
            }
        })
    }

    pub fn set_available(&mut self, line: usize, fc: usize, units: u32) {
        self.available[line * self.fc_count + fc] = units;
    }

    /// Pass an FC over: it counts as holding nothing of any line (an FC
    /// at its daily capacity, RULES §12).
    pub fn set_unavailable(&mut self, fc: usize) {
        for line in 0..self.lines() {
            self.set_available(line, fc, 0);
        }
    }

    fn available(&self, line: usize, fc: usize) -> u32 {
        self.available[line * self.fc_count + fc]
    }

    fn lines(&self) -> usize {
        self.needs.len()
    }

    fn fc_fills_order(&self, fc: usize) -> bool {
        (0..self.lines()).all(|line| self.available(line, fc) >= self.needs[line])
    }

    /// Summed in 64 bits: ten FCs of 32-bit counts can exceed 32 bits.
    fn network_total(&self, line: usize) -> u64 {
        (0..self.fc_count)
            .map(|fc| u64::from(self.available(line, fc)))
            .sum()
    }
}

/// Which shapes of allocation the order accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rules {
    /// The matrix has exactly one FC, the assigned one: whole order there or nothing.
    pub assigned_fc: bool,
    /// May the order be split across several FCs?
    pub split: bool,
    /// May the order take what is there and leave the rest in exception?
    /// Taking what is there implies taking it from wherever it is, so
    /// `short` is only honoured together with `split`.
    pub short: bool,
}

impl Rules {
    /// The rules of ordinary allocation: partial shipments allow both.
    pub fn ordinary(partial_shipments: bool, assigned_fc: bool) -> Self {
        Self {
            assigned_fc,
            split: partial_shipments,
            short: partial_shipments,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pick {
    pub line: usize,
    pub fc: usize,
    pub quantity: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shortfall {
    pub line: usize,
    pub quantity: u32,
    pub reason: ExceptionReason,
}

/// The decision for one order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    pub picks: Vec<Pick>,
    pub shortfalls: Vec<Shortfall>,
}

impl Plan {
    fn whole_order_short(matrix: &StockMatrix, reason: ExceptionReason) -> Self {
        Self {
            picks: Vec::new(),
            shortfalls: (0..matrix.lines())
                .map(|line| Shortfall {
                    line,
                    quantity: matrix.needs[line],
                    reason,
                })
                .collect(),
        }
    }

    fn whole_order_at(matrix: &StockMatrix, fc: usize) -> Self {
        Self {
            picks: (0..matrix.lines())
                .map(|line| Pick {
                    line,
                    fc,
                    quantity: matrix.needs[line],
                })
                .collect(),
            shortfalls: Vec::new(),
        }
    }
}

/// Decide one order (the RULES §4 table, row by row).
pub fn decide(matrix: &StockMatrix, rules: Rules) -> Plan {
    if rules.assigned_fc {
        debug_assert!(matrix.fc_count <= 1);
        return if matrix.fc_count == 1 && matrix.fc_fills_order(0) {
            Plan::whole_order_at(matrix, 0)
        } else {
            Plan::whole_order_short(matrix, ExceptionReason::InsufficientAtAssignedFc)
        };
    }

    // One FC can fill the whole order: the most preferred (or nearest) such FC.
    let mut fillers = (0..matrix.fc_count).filter(|&fc| matrix.fc_fills_order(fc));
    let filler = match matrix.places {
        None => fillers.next(),
        // Strictly nearer replaces: among equals the lowest index stays.
        Some(_) => fillers.fold(None, |best: Option<usize>, fc| match best {
            Some(best) if matrix.nearness(best) <= matrix.nearness(fc) => Some(best),
            _ => Some(fc),
        }),
    };
    if let Some(fc) = filler {
        return Plan::whole_order_at(matrix, fc);
    }

    let totals: PerLine<u64> = (0..matrix.lines())
        .map(|line| matrix.network_total(line))
        .collect();
    let network_fills = totals
        .iter()
        .zip(&matrix.needs)
        .all(|(&total, &need)| total >= u64::from(need));

    if network_fills {
        return if rules.split {
            Plan {
                picks: split_across_fewest_fcs(matrix, &matrix.needs),
                shortfalls: Vec::new(),
            }
        } else {
            Plan::whole_order_short(matrix, ExceptionReason::SplitNotAllowed)
        };
    }

    let anything_available = totals.iter().any(|&total| total > 0);
    if !(rules.short && rules.split && anything_available) {
        return Plan::whole_order_short(matrix, ExceptionReason::InsufficientNetworkInventory);
    }

    // Take what is there, from as few FCs as possible; the rest waits.
    let takes: PerLine<u32> = totals
        .iter()
        .zip(&matrix.needs)
        .map(|(&total, &need)| take(total, need))
        .collect();
    let shortfalls = (0..matrix.lines())
        .filter(|&line| takes[line] < matrix.needs[line])
        .map(|line| Shortfall {
            line,
            quantity: matrix.needs[line] - takes[line],
            reason: ExceptionReason::InsufficientNetworkInventory,
        })
        .collect();
    Plan {
        picks: split_across_fewest_fcs(matrix, &takes),
        shortfalls,
    }
}

/// How one candidate FC stood in a decision: a by-product of the matrix the
/// policy decided on, read only when someone asks why (RULES §11).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Assessed {
    /// Index into the matrix's FCs: its rank less one.
    pub fc: usize,
    pub chosen: bool,
    pub can_fill_order: bool,
    /// The lines it holds fewer units of than needed: (line, needed, available).
    pub short: SmallVec<[(usize, u32, u32); 4]>,
}

/// Every candidate FC of `plan`, chosen ones first, then by rank; at most `limit`.
pub fn assess(matrix: &StockMatrix, plan: &Plan, limit: usize) -> Vec<Assessed> {
    let chosen = |fc: usize| {
        plan.picks
            .iter()
            .any(|pick| pick.fc == fc && pick.quantity > 0)
    };
    let (mut picked, others): (Vec<usize>, Vec<usize>) =
        (0..matrix.fc_count).partition(|&fc| chosen(fc));
    picked.extend(others);
    picked
        .into_iter()
        .take(limit)
        .map(|fc| Assessed {
            fc,
            chosen: chosen(fc),
            can_fill_order: matrix.fc_fills_order(fc),
            short: (0..matrix.lines())
                .filter(|&line| matrix.available(line, fc) < matrix.needs[line])
                .map(|line| (line, matrix.needs[line], matrix.available(line, fc)))
                .collect(),
        })
        .collect()
}

/// What a line can take: all it needs, or all the network has if less.
fn take(network_total: u64, need: u32) -> u32 {
    u32::try_from(network_total).map_or(need, |total| total.min(need))
}

/// Cover `takes` (which the network as a whole can give) with the fewest FCs,
/// then take each line's units from the chosen FCs in rank order (nearest
/// first, when routing by distance).
fn split_across_fewest_fcs(matrix: &StockMatrix, takes: &[u32]) -> Vec<Pick> {
    let mut chosen = if matrix.fc_count <= EXACT_COVER_FCS_MAX {
        fewest_fcs_exact(matrix, takes)
    } else {
        fewest_fcs_greedy(matrix, takes)
    };
    if matrix.places.is_some() {
        chosen.sort_by(|&a, &b| {
            matrix
                .nearness(a)
                .total_cmp(&matrix.nearness(b))
                .then(a.cmp(&b))
        });
    }
    let mut picks = Vec::new();
    for (line, &take) in takes.iter().enumerate() {
        let mut remaining = take;
        for &fc in &chosen {
            if remaining == 0 {
                break;
            }
            let quantity = remaining.min(matrix.available(line, fc));
            if quantity > 0 {
                picks.push(Pick { line, fc, quantity });
                remaining -= quantity;
            }
        }
        debug_assert_eq!(remaining, 0, "cover did not cover line {line}");
    }
    picks
}

/// Indexes of chosen FCs, inline up to the exact-cover limit.
type FcSet = SmallVec<[usize; EXACT_COVER_FCS_MAX]>;

fn covers(matrix: &StockMatrix, takes: &[u32], fcs: &[usize]) -> bool {
    takes.iter().enumerate().all(|(line, &take)| {
        fcs.iter()
            .map(|&fc| u64::from(matrix.available(line, fc)))
            .sum::<u64>()
            >= u64::from(take)
    })
}

/// The smallest set of FCs that covers `takes`; among sets of that size, the
/// first in rank order (lexicographic over ranked indexes), or, routing by
/// distance, the one of smallest total distance (then the first in rank order).
fn fewest_fcs_exact(matrix: &StockMatrix, takes: &[u32]) -> FcSet {
    let n = matrix.fc_count;
    for size in 1..=n {
        let mut combination: FcSet = (0..size).collect();
        let mut best: Option<(FcSet, (usize, f64))> = None;
        loop {
            if covers(matrix, takes, &combination) {
                if matrix.places.is_none() {
                    return combination;
                }
                let spread = matrix.spread(&combination);
                if best.as_ref().is_none_or(|(_, least)| spread < *least) {
                    best = Some((combination.clone(), spread));
                }
            }
            // Next combination in lexicographic order.
            let Some(i) = (0..size).rev().find(|&i| combination[i] < n - size + i) else {
                break;
            };
            combination[i] += 1;
            for j in i + 1..size {
                combination[j] = combination[j - 1] + 1;
            }
        }
        if let Some((chosen, _)) = best {
            return chosen;
        }
    }
    (0..n).collect()
}

/// Repeatedly choose the FC that covers the most still-needed units (ties:
/// the nearer when routing by distance, then rank). Returned in rank order.
fn fewest_fcs_greedy(matrix: &StockMatrix, takes: &[u32]) -> FcSet {
    let n = matrix.fc_count;
    let mut remaining: PerLine<u32> = takes.iter().copied().collect();
    let mut chosen = FcSet::new();
    // Every FC's gain, summed line by line over contiguous rows of the
    // matrix: with 50 FCs this loop is most of a split's cost.
    let mut gains: SmallVec<[u64; 16]> = SmallVec::from_elem(0, n);
    while remaining.iter().any(|&units| units > 0) {
        gains.iter_mut().for_each(|gain| *gain = 0);
        for (line, &units) in remaining.iter().enumerate().filter(|(_, &units)| units > 0) {
            let row = &matrix.available[line * n..(line + 1) * n];
            for (gain, &available) in gains.iter_mut().zip(row) {
                *gain += u64::from(units.min(available));
            }
        }
        // Highest gain; among equals the nearest, then the lowest index.
        let mut best: Option<(u64, f64, usize)> = None;
        for (fc, &gain) in gains.iter().enumerate() {
            if gain == 0 || chosen.contains(&fc) {
                continue;
            }
            let near = matrix.nearness(fc);
            if best.is_none_or(|(most, nearest, _)| gain > most || (gain == most && near < nearest))
            {
                best = Some((gain, near, fc));
            }
        }
        let Some((_, _, fc)) = best else {
            break;
        };
        for (line, left) in remaining.iter_mut().enumerate() {
            *left -= (*left).min(matrix.available(line, fc));
        }
        chosen.push(fc);
    }
    chosen.sort_unstable();
    chosen
}

#[cfg(test)]
mod tests {
    use super::*;
    use ExceptionReason::*;

    /// `available[line][fc]`.
    fn matrix(needs: &[u32], available: &[&[u32]]) -> StockMatrix {
        let fcs = available.first().map_or(0, |row| row.len());
        let mut m = StockMatrix::new(needs.to_vec(), fcs);
        for (line, row) in available.iter().enumerate() {
            for (fc, &units) in row.iter().enumerate() {
                m.set_available(line, fc, units);
            }
        }
        m
    }

    fn pick(line: usize, fc: usize, quantity: u32) -> Pick {
        Pick { line, fc, quantity }
    }

    fn short(line: usize, quantity: u32, reason: ExceptionReason) -> Shortfall {
        Shortfall {
            line,
            quantity,
            reason,
        }
    }

    const PARTIAL: Rules = Rules {
        assigned_fc: false,
        split: true,
        short: true,
    };
    const WHOLE: Rules = Rules {
        assigned_fc: false,
        split: false,
        short: false,
    };
    const ASSIGNED: Rules = Rules {
        assigned_fc: true,
        split: false,
        short: false,
    };

    #[test]
    fn one_fc_fills_the_order_whatever_the_partial_setting() {
        let m = matrix(&[2, 1], &[&[1, 2, 5], &[1, 1, 1]]);
        for rules in [PARTIAL, WHOLE] {
            let plan = decide(&m, rules);
            assert_eq!(plan.picks, vec![pick(0, 1, 2), pick(1, 1, 1)]);
            assert!(plan.shortfalls.is_empty());
        }
    }

    #[test]
    fn the_most_preferred_of_several_filling_fcs_wins() {
        let m = matrix(&[1], &[&[0, 3, 3]]);
        assert_eq!(decide(&m, WHOLE).picks, vec![pick(0, 1, 1)]);
    }

    #[test]
    fn network_fills_with_partial_on_splits_across_fewest_fcs() {
        // FC0 has some of both, FC1 only line 0, FC2 only line 1, FC3 the rest.
        // {FC1, FC2} covers both lines with two FCs; FC0 alone cannot.
        let m = matrix(&[4, 4], &[&[1, 4, 0, 0], &[1, 0, 4, 0]]);
        let plan = decide(&m, PARTIAL);
        assert_eq!(plan.picks, vec![pick(0, 1, 4), pick(1, 2, 4)]);
        assert!(plan.shortfalls.is_empty());
    }

    #[test]
    fn split_ties_between_equally_small_covers_go_to_priority() {
        // {0,1} and {0,2} and {1,2} all cover; {0,1} ranks first.
        let m = matrix(&[2], &[&[1, 1, 1]]);
        let plan = decide(&m, PARTIAL);
        assert_eq!(plan.picks, vec![pick(0, 0, 1), pick(0, 1, 1)]);
    }

    #[test]
    fn network_fills_with_partial_off_is_split_not_allowed() {
        let m = matrix(&[2, 2], &[&[2, 0], &[0, 2]]);
        let plan = decide(&m, WHOLE);
        assert!(plan.picks.is_empty());
        assert_eq!(
            plan.shortfalls,
            vec![short(0, 2, SplitNotAllowed), short(1, 2, SplitNotAllowed)]
        );
    }

    #[test]
    fn network_short_with_partial_on_takes_what_is_there() {
        let m = matrix(&[5, 2], &[&[1, 2], &[0, 2]]);
        let plan = decide(&m, PARTIAL);
        assert_eq!(
            plan.picks,
            vec![pick(0, 0, 1), pick(0, 1, 2), pick(1, 1, 2)]
        );
        assert_eq!(
            plan.shortfalls,
            vec![short(0, 2, InsufficientNetworkInventory)]
        );
    }

    #[test]
    fn network_short_with_partial_off_is_insufficient_network_inventory() {
        let m = matrix(&[5, 2], &[&[1, 2], &[0, 2]]);
        let plan = decide(&m, WHOLE);
        assert!(plan.picks.is_empty());
        assert_eq!(
            plan.shortfalls,
            vec![
                short(0, 5, InsufficientNetworkInventory),
                short(1, 2, InsufficientNetworkInventory)
            ]
        );
    }

    #[test]
    fn nothing_available_is_insufficient_network_inventory_either_way() {
        let m = matrix(&[1], &[&[0, 0]]);
        for rules in [PARTIAL, WHOLE] {
            let plan = decide(&m, rules);
            assert!(plan.picks.is_empty());
            assert_eq!(
                plan.shortfalls,
                vec![short(0, 1, InsufficientNetworkInventory)]
            );
        }
        // No candidate FC at all.
        let none = StockMatrix::new(vec![3], 0);
        assert_eq!(
            decide(&none, PARTIAL).shortfalls,
            vec![short(0, 3, InsufficientNetworkInventory)]
        );
    }

    #[test]
    fn assigned_fc_is_whole_order_there_or_exception() {
        let enough = matrix(&[2, 1], &[&[2], &[1]]);
        assert_eq!(
            decide(&enough, ASSIGNED).picks,
            vec![pick(0, 0, 2), pick(1, 0, 1)]
        );
        let short_one = matrix(&[2, 1], &[&[2], &[0]]);
        let plan = decide(&short_one, ASSIGNED);
        assert!(plan.picks.is_empty());
        assert_eq!(
            plan.shortfalls,
            vec![
                short(0, 2, InsufficientAtAssignedFc),
                short(1, 1, InsufficientAtAssignedFc)
            ]
        );
        // Partial shipments never make an assigned order partial.
        let rules = Rules {
            split: true,
            short: true,
            ..ASSIGNED
        };
        assert!(decide(&short_one, rules).picks.is_empty());
    }

    #[test]
    fn the_assessment_lists_chosen_fcs_first_with_their_shortfalls() {
        // FC0 holds line 0 only, FC1 line 1 only, FC2 neither: a split over {0, 1}.
        let m = matrix(&[2, 3], &[&[2, 0, 1], &[0, 3, 1]]);
        let plan = decide(&m, PARTIAL);
        let assessed = assess(&m, &plan, 16);
        let fcs: Vec<(usize, bool, bool)> = assessed
            .iter()
            .map(|a| (a.fc, a.chosen, a.can_fill_order))
            .collect();
        assert_eq!(fcs, [(0, true, false), (1, true, false), (2, false, false)]);
        let short: Vec<Vec<(usize, u32, u32)>> =
            assessed.iter().map(|a| a.short.to_vec()).collect();
        assert_eq!(
            short,
            [vec![(1, 3, 0)], vec![(0, 2, 0)], vec![(0, 2, 1), (1, 3, 1)]]
        );
        assert_eq!(assess(&m, &plan, 1).len(), 1, "bounded");
        // A whole-order FC that ranks second is listed first.
        let m = matrix(&[1], &[&[0, 1]]);
        let assessed = assess(&m, &decide(&m, WHOLE), 16);
        assert_eq!((assessed[0].fc, assessed[0].chosen), (1, true));
        assert!(assessed[0].can_fill_order && assessed[0].short.is_empty());
    }

    /// A seeded xorshift64 generator, for the randomized sweeps.
    fn xorshift(mut state: u64) -> impl FnMut() -> u64 {
        move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        }
    }

    /// Unit vectors of FCs spread along the equator, `degrees` east of 0.
    fn place(degrees: f64) -> [f64; 3] {
        crate::model::GeoPoint::new(0.0, degrees)
            .unwrap()
            .unit_vector()
    }

    #[test]
    fn closest_routing_picks_the_nearest_filling_fc_and_breaks_ties_by_rank() {
        // FC0 (rank 1) is far, FC1 near, FC2 as near as FC1, FC3 near but short.
        let mut m = matrix(&[2], &[&[5, 5, 5, 1]]);
        m.set_places(
            place(0.0),
            [
                Some(place(90.0)),
                Some(place(10.0)),
                Some(place(-10.0)),
                Some(place(0.0)),
            ],
        );
        assert_eq!(
            decide(&m, WHOLE).picks,
            vec![pick(0, 1, 2)],
            "nearest, then rank"
        );
        // An FC without a location comes after every located one.
        let mut m = matrix(&[2], &[&[5, 5]]);
        m.set_places(place(0.0), [None, Some(place(170.0))]);
        assert_eq!(decide(&m, WHOLE).picks, vec![pick(0, 1, 2)]);
        assert_eq!(m.distance_km(0), None);
        assert!(m.distance_km(1).unwrap() > 18_000.0);
    }

    #[test]
    fn closest_split_is_the_fewest_fcs_then_the_least_total_distance() {
        // Line 0 at FC0 (far) or FC2 (near); line 1 only at FC1.
        let mut m = matrix(&[2, 2], &[&[2, 0, 2], &[0, 2, 0]]);
        m.set_places(
            place(0.0),
            [Some(place(80.0)), Some(place(5.0)), Some(place(6.0))],
        );
        assert_eq!(
            decide(&m, PARTIAL).picks,
            vec![pick(0, 2, 2), pick(1, 1, 2)]
        );
        // Ranked, the same matrix takes the first cover in rank order.
        let m = matrix(&[2, 2], &[&[2, 0, 2], &[0, 2, 0]]);
        assert_eq!(
            decide(&m, PARTIAL).picks,
            vec![pick(0, 0, 2), pick(1, 1, 2)]
        );
    }

    #[test]
    fn closest_split_matches_brute_force_on_random_small_networks() {
        let mut next = xorshift(0x2545_F491_4F6C_DD1D);
        for _ in 0..400 {
            let lines = 1 + (next() % 3) as usize;
            let fcs = 2 + (next() % 5) as usize;
            let mut m = StockMatrix::new((0..lines).map(|_| 1 + next() as u32 % 4), fcs);
            for line in 0..lines {
                for fc in 0..fcs {
                    m.set_available(line, fc, next() as u32 % 3);
                }
            }
            let places: Vec<Option<[f64; 3]>> = (0..fcs)
                .map(|_| {
                    (!next().is_multiple_of(5))
                        .then(|| place((next() % 3600) as f64 / 10.0 - 180.0))
                })
                .collect();
            m.set_places(place(0.0), places);
            let takes: Vec<u32> = (0..lines)
                .map(|line| take(m.network_total(line), m.needs[line]))
                .collect();
            // Every subset, by (size, FCs without a location, total km, rank order).
            let mut best: Option<((usize, usize, f64), Vec<usize>)> = None;
            for mask in 1u32..(1 << fcs) {
                let set: Vec<usize> = (0..fcs).filter(|fc| mask & (1 << fc) != 0).collect();
                if !covers(&m, &takes, &set) {
                    continue;
                }
                let (unlocated, km) = m.spread(&set);
                let key = (set.len(), unlocated, km);
                let better = match &best {
                    None => true,
                    Some((least, chosen)) => key < *least || (key == *least && set < *chosen),
                };
                if better {
                    best = Some((key, set));
                }
            }
            let exact = fewest_fcs_exact(&m, &takes);
            match best {
                Some((_, set)) => assert_eq!(exact.to_vec(), set, "{m:?}"),
                None => assert_eq!(exact.len(), fcs),
            }
        }
    }

    #[test]
    fn greedy_cover_is_used_beyond_the_exact_limit_and_still_covers() {
        let fcs = EXACT_COVER_FCS_MAX + 4;
        let mut m = StockMatrix::new(vec![10, 10], fcs);
        for fc in 0..fcs {
            m.set_available(0, fc, 1);
            m.set_available(1, fc, 1);
        }
        m.set_available(0, fcs - 1, 9);
        m.set_available(1, fcs - 2, 9);
        let plan = decide(&m, PARTIAL);
        for line in 0..2 {
            let units: u32 = plan
                .picks
                .iter()
                .filter(|p| p.line == line)
                .map(|p| p.quantity)
                .sum();
            assert_eq!(units, 10);
        }
        let used: std::collections::BTreeSet<usize> = plan.picks.iter().map(|p| p.fc).collect();
        // The two big FCs plus one more for the last unit of each line.
        assert!(used.len() <= 4, "greedy used {used:?}");
    }

    #[test]
    fn exact_cover_is_never_larger_than_greedy() {
        // Small seeded sweep: the exact search must find a cover no larger than greedy's.
        let mut next = xorshift(0x9E37_79B9_7F4A_7C15);
        for _ in 0..500 {
            let lines = 1 + (next() % 4) as usize;
            let fcs = 1 + (next() % 6) as usize;
            let mut m = StockMatrix::new((0..lines).map(|_| 1 + next() as u32 % 5), fcs);
            for line in 0..lines {
                for fc in 0..fcs {
                    m.set_available(line, fc, next() as u32 % 4);
                }
            }
            let takes: Vec<u32> = (0..lines)
                .map(|line| take(m.network_total(line), m.needs[line]))
                .collect();
            let exact = fewest_fcs_exact(&m, &takes);
            let greedy = fewest_fcs_greedy(&m, &takes);
            assert!(covers(&m, &takes, &exact));
            assert!(exact.len() <= greedy.len().max(1));
        }
    }
}
