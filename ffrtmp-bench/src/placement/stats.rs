//! Means with Student-t confidence intervals, and the relative change between two means with
//! its interval (Welch's degrees of freedom on the log of the ratio), for the few repeats a
//! placement bench runs.

use statrs::distribution::{ContinuousCDF, StudentsT};

/// The confidence of every interval.
pub const CONFIDENCE: f64 = 0.95;

/// A mean and its confidence interval.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct MeanCi {
    /// Mean of the repeats.
    pub mean: f64,
    /// Lower end of the 95 % interval (the mean itself with a single repeat).
    pub low: f64,
    /// Upper end.
    pub high: f64,
    /// Repeats.
    pub n: usize,
}

/// A relative change (`test / base - 1`) and its confidence interval.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct ChangeCi {
    /// The change of the means, e.g. `-0.3` for 30 % less.
    pub change: f64,
    /// Lower end of the 95 % interval (the change itself with too few repeats).
    pub low: f64,
    /// Upper end.
    pub high: f64,
}

fn mean_var(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = if values.len() > 1 {
        values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)
    } else {
        0.0
    };
    (mean, var)
}

/// The two-sided critical value of Student's t with `df` degrees of freedom.
fn t_critical(df: f64) -> Option<f64> {
    let t = StudentsT::new(0.0, 1.0, df).ok()?;
    Some(t.inverse_cdf(1.0 - (1.0 - CONFIDENCE) / 2.0))
}

/// The mean of `values` with its Student-t interval; `None` when there are none.
pub fn mean_ci(values: &[f64]) -> Option<MeanCi> {
    if values.is_empty() {
        return None;
    }
    let (mean, var) = mean_var(values);
    let n = values.len();
    let half = match t_critical(n as f64 - 1.0) {
        Some(t) if n > 1 => t * (var / n as f64).sqrt(),
        _ => 0.0,
    };
    Some(MeanCi {
        mean,
        low: mean - half,
        high: mean + half,
        n,
    })
}

/// The change of the mean of `test` against the mean of `base`, with an interval from the
/// log of the ratio of means (delta method, Welch–Satterthwaite degrees of freedom); `None`
/// when either side is empty or the means are not positive.
pub fn change_ci(base: &[f64], test: &[f64]) -> Option<ChangeCi> {
    if base.is_empty() || test.is_empty() {
        return None;
    }
    let (mb, vb) = mean_var(base);
    let (mt, vt) = mean_var(test);
    if mb <= 0.0 || mt <= 0.0 {
        return None;
    }
    let change = mt / mb - 1.0;
    // Variances of the log of each mean.
    let (lb, lt) = (vb / (base.len() as f64 * mb * mb), vt / (test.len() as f64 * mt * mt));
    let se2 = lb + lt;
    let dof_term = |l: f64, n: usize| if n > 1 { l * l / (n as f64 - 1.0) } else { 0.0 };
    let denom = dof_term(lb, base.len()) + dof_term(lt, test.len());
    let t = if se2 > 0.0 && denom > 0.0 && base.len() > 1 && test.len() > 1 {
        t_critical(se2 * se2 / denom)
    } else {
        None
    };
    let (low, high) = match t {
        Some(t) => {
            let (ratio, half) = ((mt / mb).ln(), t * se2.sqrt());
            ((ratio - half).exp() - 1.0, (ratio + half).exp() - 1.0)
        }
        None => (change, change),
    };
    Some(ChangeCi { change, low, high })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mean_interval_uses_students_t() {
        let ci = mean_ci(&[10.0, 12.0, 14.0]).unwrap();
        assert_eq!((ci.mean, ci.n), (12.0, 3));
        // s = 2, n = 3, t(0.975, 2) = 4.303: half width 4.303 * 2 / sqrt(3) = 4.969.
        assert!((ci.high - 12.0 - 4.969).abs() < 0.01, "{ci:?}");
        assert!((12.0 - ci.low - 4.969).abs() < 0.01, "{ci:?}");
        let one = mean_ci(&[5.0]).unwrap();
        assert_eq!((one.low, one.mean, one.high), (5.0, 5.0, 5.0));
        assert!(mean_ci(&[]).is_none());
    }

    #[test]
    fn the_change_interval_holds_the_change_and_narrows_with_less_noise() {
        let base = [100.0, 104.0, 96.0];
        let test = [70.0, 73.0, 67.0];
        let c = change_ci(&base, &test).unwrap();
        assert!((c.change + 0.30).abs() < 1e-12, "{c:?}");
        assert!(c.low < c.change && c.change < c.high, "{c:?}");
        assert!(c.high < 0.0, "30 % less with 4 % noise is clearly less: {c:?}");
        let noisy = change_ci(&[100.0, 150.0, 50.0], &[70.0, 120.0, 20.0]).unwrap();
        assert!(noisy.high - noisy.low > c.high - c.low, "{noisy:?} vs {c:?}");
        assert!(noisy.low < noisy.change && noisy.high > 0.0, "{noisy:?}");
        // One repeat each: no interval, only the change.
        let single = change_ci(&[10.0], &[12.0]).unwrap();
        assert!((single.change - 0.2).abs() < 1e-12);
        assert_eq!((single.low, single.high), (single.change, single.change));
        assert!(change_ci(&[0.0], &[1.0]).is_none() && change_ci(&[], &[1.0]).is_none());
    }
}
