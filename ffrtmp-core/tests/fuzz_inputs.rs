//! The fuzz targets of `fuzz/` on stable Rust: the same functions, fed arbitrary bytes and
//! mutated valid input for a bounded number of cases. Each must answer with a value or a clean
//! error, never panic.

use ffrtmp_core::{JobSpec, Scenario};
use proptest::prelude::*;
use proptest::sample::{select, Index};
use serde_json::Value;

const CASES: u32 = 2_000;

/// Valid job specs, from the smallest to one with every field.
const SPECS: &[&str] = &[
    r#"{"scenario":"720p-h264"}"#,
    r#"{"scenario":"1080p60-h265","parameters":{"duration":2,"bitrate":"5M","preset":"veryfast"}}"#,
    r#"{"scenario":"live-rtmp","confidence":"auto","queue":"live","priority":"high","engine":"gstreamer"}"#,
    r#"{"scenario":"4k-av1","parameters":{"duration":1.5,"fps":24,"resolution":"1280x720","codec":"h264",
        "encoder":"libx264","input":"clip.mp4","output_mode":"null"},
        "resource_limits":{"max_cpu_percent":150,"max_memory_mb":2048,"max_disk_mb":100,"timeout_sec":60,
        "enforcement":"required"},"max_retries":2}"#,
];

/// Scenario names of every form the grammar has.
const NAMES: &[&str] = &[
    "720p-h264",
    "1080p60-h265",
    "4k30-av1",
    "8k-vp9",
    "live-rtmp",
    "transcode",
    "480P25-H264",
];

/// Byte edits (insert, delete, overwrite) at arbitrary places of a valid input.
fn mutated(seeds: &'static [&'static str]) -> impl Strategy<Value = Vec<u8>> {
    (
        select(seeds),
        prop::collection::vec((any::<Index>(), any::<u8>(), 0u8..3), 0..8),
    )
        .prop_map(|(seed, edits)| {
            let mut bytes = seed.as_bytes().to_vec();
            for (at, byte, op) in edits {
                let at = at.index(bytes.len() + 1);
                match op {
                    0 => bytes.insert(at, byte),
                    1 if at < bytes.len() => {
                        bytes.remove(at);
                    }
                    _ if at < bytes.len() => bytes[at] = byte,
                    _ => bytes.push(byte),
                }
            }
            bytes
        })
}

/// Values at the edges of what JSON can say.
fn edge_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        Just(serde_json::json!(1e308)),
        Just(serde_json::json!(-0.0)),
        ".*".prop_map(Value::String),
        Just(Value::String("x".repeat(100_000))),
        Just(serde_json::json!([])),
        Just(serde_json::json!({})),
    ]
}

/// A valid object with one field (at any depth) replaced by an edge value, or a field added.
fn tweaked(seeds: &'static [&'static str]) -> impl Strategy<Value = String> {
    (select(seeds), any::<Index>(), edge_value(), "[a-z_]{1,12}").prop_map(|(seed, at, value, key)| {
        let mut doc: Value = serde_json::from_str(seed).expect("seed is valid JSON");
        let mut paths = Vec::new();
        leaf_paths(&doc, &mut Vec::new(), &mut paths);
        let path = &paths[at.index(paths.len())];
        let mut slot = &mut doc;
        for key in path {
            slot = &mut slot[key.as_str()];
        }
        if let Value::Object(map) = slot {
            map.insert(key, value);
        } else {
            *slot = value;
        }
        doc.to_string()
    })
}

fn leaf_paths(value: &Value, prefix: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    out.push(prefix.clone());
    if let Value::Object(map) = value {
        for (key, child) in map {
            prefix.push(key.clone());
            leaf_paths(child, prefix, out);
            prefix.pop();
        }
    }
}

/// The `job_spec` fuzz target: parse then validate; a valid spec names a parsable scenario.
fn check_spec(bytes: &[u8]) {
    if let Ok(spec) = serde_json::from_slice::<JobSpec>(bytes) {
        match spec.validate() {
            Ok(scenario) => assert!(Scenario::parse(&spec.scenario).is_ok(), "{scenario:?}"),
            Err(e) => assert!(!e.to_string().is_empty()),
        }
    }
}

/// The `scenario` fuzz target: a parsed scenario has sane sizes.
fn check_scenario(text: &str) {
    if let Ok(s) = Scenario::parse(text) {
        assert!(s.width % 2 == 0 && s.height >= 144 && s.fps >= 1, "{text:?} -> {s:?}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: CASES, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn job_spec_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        check_spec(&bytes);
    }

    #[test]
    fn job_spec_mutated_bytes(bytes in mutated(SPECS)) {
        check_spec(&bytes);
    }

    #[test]
    fn job_spec_edge_values(text in tweaked(SPECS)) {
        check_spec(text.as_bytes());
    }

    #[test]
    fn scenario_arbitrary_text(text in ".{0,64}") {
        check_scenario(&text);
    }

    #[test]
    fn scenario_mutated_names(bytes in mutated(NAMES)) {
        check_scenario(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn scenario_grammar_shaped(height in any::<u64>(), fps in any::<u64>(), codec in "(h264|h265|vp9|av1|[a-z0-9]{0,6})") {
        check_scenario(&format!("{height}p{fps}-{codec}"));
    }
}

/// The seeds themselves are valid, so the mutations start from input the parser accepts.
#[test]
fn seeds_are_valid() {
    for seed in SPECS {
        let spec: JobSpec = serde_json::from_str(seed).unwrap_or_else(|e| panic!("{seed}: {e}"));
        spec.validate().unwrap_or_else(|e| panic!("{seed}: {e}"));
    }
    for name in NAMES {
        Scenario::parse(name).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}
