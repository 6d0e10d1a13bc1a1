//! `ffrtmp watch` YAML rule files: a config or an `invalid watch config` error, never a panic.
//! Stable run: `ffrtmp-exec/tests/fuzz_inputs.rs`.
#![no_main]

use ffrtmp_exec::wrapper::watch::WatchConfig;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match WatchConfig::parse(text) {
        Ok(config) => {
            let argv = ["/usr/bin/ffmpeg".to_string(), "-c:v".to_string()];
            if let Some(rule) = config.find("ffmpeg", &argv) {
                let _ = rule.limits();
            }
        }
        Err(e) => assert!(e.starts_with("invalid watch config")),
    }
});
