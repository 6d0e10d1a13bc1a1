//! Helpers for [`Collector`]s whose values are read at scrape time (atomics owned elsewhere,
//! `/proc`, a store snapshot): one descriptor per family, then one sample per label set,
//! encoded by prometheus-client.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{
    CounterValueEncoder, DescriptorEncoder, EncodeCounterValue, EncodeGaugeValue, EncodeMetric, GaugeValueEncoder,
};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;

/// A sample value: whole numbers print as integers (`3`, not `3.0`), so series read the
/// same whichever type counted them.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Num(pub f64);

impl Num {
    /// Whole, non-negative and exactly representable: printed as an integer.
    fn as_whole(self) -> Option<u64> {
        let v = self.0;
        (v.is_finite() && v >= 0.0 && v.fract() == 0.0 && v < 9.0e15).then_some(v as u64)
    }
}

impl EncodeCounterValue for Num {
    fn encode(&self, encoder: &mut CounterValueEncoder) -> Result<(), std::fmt::Error> {
        match self.as_whole() {
            Some(n) => EncodeCounterValue::encode(&n, encoder),
            None => EncodeCounterValue::encode(&self.0, encoder),
        }
    }
}

impl EncodeGaugeValue for Num {
    fn encode(&self, encoder: &mut GaugeValueEncoder) -> Result<(), std::fmt::Error> {
        match self.as_whole() {
            Some(n) => EncodeGaugeValue::encode(&n, encoder),
            None => EncodeGaugeValue::encode(&self.0, encoder),
        }
    }
}

/// Labels of one sample: `[("zone", "package-0")]`.
pub type Labels<'a> = &'a [(&'a str, &'a str)];

/// Encodes a counter family. `name` is the exposed name, ending in `_total` (the encoder
/// adds that suffix itself, so it is taken off first).
pub fn counter_family(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    series: &[(Labels, f64)],
) -> Result<(), std::fmt::Error> {
    let base = name.strip_suffix("_total").unwrap_or(name);
    let mut metric = encoder.encode_descriptor(base, help, None, MetricType::Counter)?;
    for (labels, value) in series {
        let counter = ConstCounter::new(Num(*value));
        if labels.is_empty() {
            counter.encode(metric.encode_family(&NoLabels)?)?;
        } else {
            counter.encode(metric.encode_family(labels)?)?;
        }
    }
    Ok(())
}

/// Encodes a gauge family.
pub fn gauge_family(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    series: &[(Labels, f64)],
) -> Result<(), std::fmt::Error> {
    let mut metric = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for (labels, value) in series {
        let gauge = ConstGauge::new(Num(*value));
        if labels.is_empty() {
            gauge.encode(metric.encode_family(&NoLabels)?)?;
        } else {
            gauge.encode(metric.encode_family(labels)?)?;
        }
    }
    Ok(())
}

/// An empty label set (`[(&str, &str); 0]` would need a type annotation at every call).
struct NoLabels;

impl prometheus_client::encoding::EncodeLabelSet for NoLabels {
    fn encode(&self, _: &mut prometheus_client::encoding::LabelSetEncoder) -> Result<(), std::fmt::Error> {
        Ok(())
    }
}

/// Renders a registry as Prometheus text (version 0.0.4).
pub fn render(registry: &prometheus_client::registry::Registry) -> String {
    let mut out = String::with_capacity(4096);
    // Writing into a String cannot fail; a collector that fails leaves its family out.
    if prometheus_client::encoding::prometheus_text::encode(&mut out, registry).is_err() {
        tracing::warn!("a metrics collector failed to encode");
    }
    out
}

/// A collector made of a closure, for values read at scrape time.
pub struct FnCollector<F>(pub F);

impl<F> std::fmt::Debug for FnCollector<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FnCollector")
    }
}

impl<F> Collector for FnCollector<F>
where
    F: Fn(&mut DescriptorEncoder) -> Result<(), std::fmt::Error> + Send + Sync + 'static,
{
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        (self.0)(&mut encoder)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::registry::Registry;

    #[test]
    fn families_render_with_types_and_whole_numbers() {
        let mut r = Registry::default();
        r.register_collector(Box::new(FnCollector(|e: &mut DescriptorEncoder| {
            counter_family(
                e,
                "ffrtmp_energy_joules_total",
                "Energy.",
                &[(&[("zone", "package-0")], 3.0), (&[("zone", "dram")], 1.5)],
            )?;
            gauge_family(e, "ffrtmp_energy_available", "Up.", &[(&[], 1.0)])
        })));
        let text = render(&r);
        assert!(text.contains("# TYPE ffrtmp_energy_joules_total counter\n"), "{text}");
        assert!(
            text.contains("ffrtmp_energy_joules_total{zone=\"package-0\"} 3\n"),
            "{text}"
        );
        assert!(
            text.contains("ffrtmp_energy_joules_total{zone=\"dram\"} 1.5\n"),
            "{text}"
        );
        assert!(
            text.contains("# TYPE ffrtmp_energy_available gauge\nffrtmp_energy_available 1\n"),
            "{text}"
        );
    }
}
