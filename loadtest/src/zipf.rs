//! Zipf-distributed ranks: rank k (0-based) with probability proportional to
//! 1 / (k + 1)^exponent, by inverse CDF over precomputed cumulative weights.

pub struct Zipf {
    cumulative: Vec<f64>,
}

impl Zipf {
    /// `n` ranks (at least 1).
    pub fn new(n: usize, exponent: f64) -> Self {
        let mut total = 0.0;
        let cumulative = (1..=n.max(1))
            .map(|rank| {
                total += 1.0 / (rank as f64).powf(exponent);
                total
            })
            .collect();
        Self { cumulative }
    }

    /// A rank, given a uniform sample in `[0, 1)`.
    pub fn sample(&self, uniform: f64) -> usize {
        let last = self.cumulative.len() - 1;
        let target = uniform * self.cumulative[last];
        self.cumulative.partition_point(|&c| c < target).min(last)
    }
}
