use super::prom::valid_name;
use super::*;

#[test]
fn histogram_and_escaping() {
    let mut p = PromText::new();
    p.histogram(
        "ffrtmp_job_seconds",
        "Job wall time.\nSecond line \\ here.",
        &[("engine", "ffmpeg")],
        &[(0.5, 1), (1.0, 3), (f64::INFINITY, 3)],
        2.25,
        4,
    );
    p.gauge("ffrtmp_x", "x", &[("a", "back\\slash\nnl")], f64::NAN);
    let text = p.finish();
    let expected = "# HELP ffrtmp_job_seconds Job wall time.\\nSecond line \\\\ here.\n\
# TYPE ffrtmp_job_seconds histogram\n\
ffrtmp_job_seconds_bucket{engine=\"ffmpeg\",le=\"0.5\"} 1\n\
ffrtmp_job_seconds_bucket{engine=\"ffmpeg\",le=\"1\"} 3\n\
ffrtmp_job_seconds_bucket{engine=\"ffmpeg\",le=\"+Inf\"} 4\n\
ffrtmp_job_seconds_sum{engine=\"ffmpeg\"} 2.25\n\
ffrtmp_job_seconds_count{engine=\"ffmpeg\"} 4\n\
# HELP ffrtmp_x x\n\
# TYPE ffrtmp_x gauge\n\
ffrtmp_x{a=\"back\\\\slash\\nnl\"} NaN\n";
    assert_eq!(text, expected);
    assert_eq!(PromText::new().finish(), "");
}

#[test]
fn families_stay_together() {
    let mut p = PromText::new();
    p.counter("a_total", "A.", &[("k", "1")], 1.0)
        .gauge("b", "B.", &[], 0.0)
        .counter("a_total", "A.", &[("k", "2")], 2.0);
    assert_eq!(
        p.finish(),
        "# HELP a_total A.\n# TYPE a_total counter\na_total{k=\"1\"} 1\na_total{k=\"2\"} 2\n\
         # HELP b B.\n# TYPE b gauge\nb 0\n"
    );
}

#[test]
fn names() {
    assert!(valid_name("ffrtmp_energy_joules_total"));
    assert!(!valid_name("1abc"));
    assert!(!valid_name(""));
    assert!(!valid_name("a-b"));
}
