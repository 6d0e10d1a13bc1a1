//! When a heartbeat's power snapshot is stored, shared by every store.

use ffrtmp_core::NodePower;

/// Whether a heartbeat carrying `incoming` must overwrite the node's `stored` snapshot:
/// a newer snapshot ([`NodePower::supersedes`]) replaces it, an older or the same one (a
/// delayed or retried heartbeat) leaves it, and a heartbeat without one clears it (see
/// [`ffrtmp_core::Heartbeat::power`]). `false` also means the write would change nothing,
/// so the row is not rewritten on every heartbeat.
pub fn replaces(stored: Option<&NodePower>, incoming: Option<&NodePower>) -> bool {
    match (stored, incoming) {
        (None, None) => false,
        (Some(_), None) | (None, Some(_)) => true,
        (Some(old), Some(new)) => new.supersedes(old),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(measured_s: f64) -> NodePower {
        NodePower {
            source: "rapl".into(),
            energy_joules: measured_s * 10.0,
            measured_s,
            watts: None,
            idle_watts: None,
            counting_since_ms: 0,
            sampled_at_ms: (measured_s * 1000.0) as u64,
            cpus: None,
        }
    }

    #[test]
    fn only_changes_are_written() {
        assert!(!replaces(None, None), "nothing to clear");
        assert!(replaces(Some(&at(1.0)), None), "a heartbeat without one clears it");
        assert!(replaces(None, Some(&at(1.0))));
        assert!(replaces(Some(&at(1.0)), Some(&at(2.0))));
        assert!(!replaces(Some(&at(2.0)), Some(&at(1.0))), "older");
        assert!(!replaces(Some(&at(2.0)), Some(&at(2.0))), "unchanged");
    }
}
