use super::files::{csv_field, parse_csv};
use super::stats::quantile;
use super::*;

#[test]
fn medians_and_quantiles() {
    assert_eq!(median(&mut [3.0, 1.0, 2.0]), Some(2.0));
    assert_eq!(median(&mut [4.0, 1.0, 2.0, 3.0]), Some(2.5));
    assert_eq!(median(&mut []), None);
    let sorted = [0.0, 1.0, 2.0, 3.0, 4.0];
    assert_eq!(quantile(&sorted, 0.5), 2.0);
    assert_eq!(quantile(&sorted, 0.125), 0.5);
    assert_eq!(quantile(&sorted, 1.0), 4.0);
}

#[test]
fn rng_is_fixed_and_uniform_enough() {
    let mut rng = SplitMix64::new(0);
    // Reference values of SplitMix64 seeded with 0.
    assert_eq!(rng.next_u64(), 0xE220_A839_7B1D_CDAF);
    assert_eq!(rng.next_u64(), 0x6E78_9E6A_A1B9_65F4);
    let mut counts = [0u32; 10];
    for _ in 0..100_000 {
        counts[rng.below(10)] += 1;
    }
    assert!(counts.iter().all(|&c| (9_500..10_500).contains(&c)), "{counts:?}");
}

#[test]
fn verdicts_at_thresholds() {
    let m = |metric, low, high| MetricComparison {
        metric,
        n_baseline: 5,
        n_test: 5,
        baseline_median: Some(1.0),
        test_median: Some(1.0),
        relative_change: Some((low + high) / 2.0),
        ci_low: Some(low),
        ci_high: Some(high),
        verdict: Verdict::Insufficient,
    };
    let t = 0.03;
    assert_eq!(m(Metric::JoulesPerFrame, 0.04, 0.06).verdict_at(t), Verdict::Worse);
    assert_eq!(m(Metric::JoulesPerFrame, -0.06, -0.04).verdict_at(t), Verdict::Better);
    // Containing 0 is not enough: [−1 %, +5 %] allows a 5 % regression.
    assert_eq!(
        m(Metric::JoulesPerFrame, -0.01, 0.05).verdict_at(t),
        Verdict::Inconclusive
    );
    assert_eq!(m(Metric::JoulesPerFrame, 0.01, 0.02).verdict_at(t), Verdict::NoChange);
    assert_eq!(
        m(Metric::JoulesPerFrame, 0.02, 0.05).verdict_at(t),
        Verdict::Inconclusive
    );
    // fps: higher is better.
    assert_eq!(m(Metric::Fps, -0.06, -0.04).verdict_at(t), Verdict::Worse);
    assert_eq!(m(Metric::Fps, 0.04, 0.06).verdict_at(t), Verdict::Better);
    assert_eq!(m(Metric::WallS, 0.04, 0.06).verdict_at(t), Verdict::Worse);
    // The case: fps −11.8 %, CI [−45 %, +7.6 %] is no evidence of "no change".
    assert_eq!(m(Metric::Fps, -0.45, 0.076).verdict_at(t), Verdict::Inconclusive);
    assert_eq!(m(Metric::Fps, -0.02, 0.025).verdict_at(t), Verdict::NoChange);
    let mut none = m(Metric::Fps, 0.0, 0.0);
    none.ci_low = None;
    assert_eq!(none.verdict_at(t), Verdict::Insufficient);
}

#[test]
fn combine_prefers_worse_then_inconclusive() {
    use Verdict::*;
    assert_eq!(combine([Better, Worse, NoChange].into_iter()), Worse);
    assert_eq!(combine([Better, Inconclusive].into_iter()), Inconclusive);
    assert_eq!(combine([Better, NoChange, Insufficient].into_iter()), Better);
    assert_eq!(combine([Insufficient, NoChange].into_iter()), NoChange);
    assert_eq!(combine([Insufficient].into_iter()), Insufficient);
}

#[test]
fn csv_quoting_round_trips() {
    let text = "scenario,fps,wall_s,extra\n\"a,\"\"b\"\"\nc\",1,2,x\r\n\n";
    let records = parse_csv(text).unwrap();
    assert_eq!(records[1].1[0], "a,\"b\"\nc");
    assert_eq!(records[1].0, 2);
    let runs = read_csv(text.as_bytes()).unwrap();
    assert_eq!(runs[0].scenario, "a,\"b\"\nc");
    assert_eq!(csv_field(&runs[0].scenario), "\"a,\"\"b\"\"\nc\"");
    assert!(matches!(parse_csv("\"open"), Err(RunsFileError::Parse { .. })));
}

#[test]
fn runs_needed_scale_the_interval_as_one_over_root_n() {
    let m = |change: f64, low: f64, high: f64, n: usize| MetricComparison {
        metric: Metric::JoulesPerFrame,
        n_baseline: n,
        n_test: n + 3,
        baseline_median: Some(1.0),
        test_median: Some(1.0 + change),
        relative_change: Some(change),
        ci_low: Some(low),
        ci_high: Some(high),
        verdict: Verdict::Insufficient,
    };
    // A small change (1 %) in a wide interval (half-width 4 %): the interval must shrink to
    // 3 % − 1 % = 2 %, a quarter of the variance: 4 × 10 runs.
    assert_eq!(m(0.01, -0.03, 0.05, 10).runs_needed(0.03), Some(40));
    // A large change (9 %) whose interval (half-width 12 %) reaches below the threshold:
    // it must shrink to 9 % − 3 % = 6 %: 4 × 6 runs.
    assert_eq!(m(0.09, -0.03, 0.21, 6).runs_needed(0.03), Some(24));
    // Decided verdicts need no more runs; a change on the threshold cannot be decided.
    assert_eq!(m(0.05, 0.04, 0.06, 10).runs_needed(0.03), None);
    assert_eq!(m(0.0, -0.01, 0.01, 10).runs_needed(0.03), None);
    assert_eq!(m(0.03, 0.0, 0.06, 10).runs_needed(0.03), None);
    // Never fewer runs than now.
    assert_eq!(m(0.0, -0.0301, 0.0301, 10).runs_needed(0.03), Some(11));
}
