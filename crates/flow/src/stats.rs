//! Running statistics in constant memory (Welford), as CICFlowMeter's `SummaryStatistics`.

/// Count, sum, min, max, mean and variance of a stream of values, updated one at a time.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Running {
    n: u64,
    sum: f64,
    mean: f64,
    m2: f64,
    min: f64,
    max: f64,
}

impl Running {
    pub fn add(&mut self, x: f64) {
        self.n += 1;
        self.sum += x;
        if self.n == 1 {
            self.min = x;
            self.max = x;
        } else {
            self.min = self.min.min(x);
            self.max = self.max.max(x);
        }
        let delta = x - self.mean;
        #[allow(clippy::cast_precision_loss, reason = "counts far below 2^52")]
        let n = self.n as f64;
        self.mean += delta / n;
        self.m2 += delta * (x - self.mean);
    }

    pub fn count(&self) -> u64 {
        self.n
    }

    pub fn sum(&self) -> f64 {
        self.sum
    }

    /// 0 when empty.
    pub fn min(&self) -> f64 {
        self.min
    }

    /// 0 when empty.
    pub fn max(&self) -> f64 {
        self.max
    }

    /// 0 when empty.
    pub fn mean(&self) -> f64 {
        self.mean
    }

    /// Sample variance (n − 1 in the denominator, as Apache Commons Math); 0 below two values.
    pub fn variance(&self) -> f64 {
        if self.n < 2 {
            return 0.0;
        }
        #[allow(clippy::cast_precision_loss, reason = "counts far below 2^52")]
        let d = (self.n - 1) as f64;
        (self.m2 / d).max(0.0)
    }

    /// Sample standard deviation.
    pub fn std(&self) -> f64 {
        self.variance().sqrt()
    }
}

#[cfg(test)]
#[allow(
    clippy::float_cmp,
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    clippy::ignored_unit_patterns,
    reason = "exact expected values in tests"
)]
mod tests {
    use super::*;

    #[test]
    fn matches_two_pass_formulas() {
        let xs = [3.0, 7.0, 7.0, 19.0, 0.0, 1500.0];
        let mut r = Running::default();
        for &x in &xs {
            r.add(x);
        }
        let n = xs.len() as f64;
        let mean = xs.iter().sum::<f64>() / n;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
        assert_eq!(r.count(), 6);
        assert!((r.mean() - mean).abs() < 1e-9);
        assert!((r.variance() - var).abs() < 1e-6);
        assert_eq!((r.min(), r.max(), r.sum()), (0.0, 1500.0, 1536.0));
    }

    #[test]
    fn empty_and_single_values_are_zero_spread() {
        let mut r = Running::default();
        assert_eq!((r.mean(), r.std(), r.min(), r.max()), (0.0, 0.0, 0.0, 0.0));
        r.add(42.0);
        assert_eq!((r.mean(), r.std(), r.min(), r.max()), (42.0, 0.0, 42.0, 42.0));
    }
}
