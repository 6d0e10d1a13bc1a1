//! Estimated energy (a power model's) and measured energy (RAPL, NVML) are different
//! quantities: `ffrtmp bench compare` refuses to set one against the other unless asked.

use std::collections::BTreeSet;

use super::RunSample;

/// Why the two sides' energy cannot be compared as like for like: the kinds of energy
/// ([`RunSample::energy_kind`]) differ between or within the files, e.g. `baseline: measured;
/// test: estimated (model vm-small)`. `None` when every run with energy has the same kind.
///
/// ```
/// use ffrtmp_power::compare::{mixed_energy, RunSample};
/// let measured = RunSample { energy_joules: Some(9.0), ..RunSample::new("720p-h264", 0, 0.1, 100.0, 3.0) };
/// let estimated = RunSample { energy_model: Some("vm".into()), ..measured.clone() };
/// assert_eq!(mixed_energy(&[measured.clone()], &[measured.clone()]), None);
/// assert_eq!(
///     mixed_energy(&[measured], &[estimated]).as_deref(),
///     Some("baseline: measured; test: estimated (model vm)")
/// );
/// ```
pub fn mixed_energy(baseline: &[RunSample], test: &[RunSample]) -> Option<String> {
    let kinds = |runs: &[RunSample]| runs.iter().filter_map(RunSample::energy_kind).collect::<BTreeSet<_>>();
    let (b, t) = (kinds(baseline), kinds(test));
    if b.union(&t).count() <= 1 {
        return None;
    }
    let list = |k: &BTreeSet<String>| {
        if k.is_empty() {
            "no energy".to_string()
        } else {
            k.iter().cloned().collect::<Vec<_>>().join(" and ")
        }
    };
    Some(format!("baseline: {}; test: {}", list(&b), list(&t)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(model: Option<&str>, joules: Option<f64>) -> RunSample {
        RunSample {
            energy_joules: joules,
            joules_per_frame: joules.map(|j| j / 10.0),
            energy_model: model.map(String::from),
            ..RunSample::new("720p-h264", 0, 0.0, 100.0, 3.0)
        }
    }

    #[test]
    fn mixed_kinds_are_named_and_runs_without_energy_do_not_count() {
        let m = run(None, Some(5.0));
        let e = run(Some("a"), Some(5.0));
        let none = RunSample {
            joules_per_frame: None,
            ..run(Some("a"), None)
        };
        assert_eq!(mixed_energy(&[m.clone(), none.clone()], std::slice::from_ref(&m)), None);
        assert_eq!(mixed_energy(std::slice::from_ref(&e), &[e.clone(), none]), None);
        assert_eq!(
            mixed_energy(&[m.clone(), e.clone()], &[m]).as_deref(),
            Some("baseline: estimated (model a) and measured; test: measured")
        );
        // Two different models are not like for like either.
        let other = run(Some("b"), Some(5.0));
        assert_eq!(
            mixed_energy(&[e], &[other]).as_deref(),
            Some("baseline: estimated (model a); test: estimated (model b)")
        );
    }

    #[test]
    fn an_estimated_run_keeps_its_model_through_csv() {
        let runs = vec![run(Some("vm, small"), Some(5.0)), run(None, Some(4.0))];
        let mut out = Vec::new();
        super::super::write_csv(&mut out, &runs).unwrap();
        let text = String::from_utf8(out.clone()).unwrap();
        assert!(
            text.starts_with("scenario,run,frames,wall_s,fps,energy_joules,joules_per_frame,energy_model\n"),
            "{text}"
        );
        assert_eq!(super::super::read_csv(&out[..]).unwrap(), runs);
    }
}
