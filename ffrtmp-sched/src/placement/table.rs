//! The efficiency table as placement reads it: in memory, indexed by scenario, replaced
//! whole by a refresher so a claim never waits on the job history.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use ffrtmp_core::efficiency::EfficiencyTable;
use ffrtmp_core::Requirements;

use super::energy_aware::compatible;

/// A node's joules per frame for some work, and the samples behind the figure.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Figure {
    /// Median joules per frame.
    pub joules_per_frame: f64,
    /// Jobs behind that median.
    pub samples: u64,
}

/// One row of the table, reduced to what placement compares.
#[derive(Clone, Debug, PartialEq)]
struct Entry {
    node: String,
    encoder: String,
    figure: Figure,
}

/// An [`EfficiencyTable`] indexed for placement: per scenario, each node's figure per
/// encoder. A row's figure is its measured median when it has one, else its estimated one;
/// rows with neither are left out.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Efficiency {
    by_scenario: HashMap<String, Vec<Entry>>,
}

impl Efficiency {
    /// The index of `table`.
    pub fn new(table: &EfficiencyTable) -> Self {
        let mut by_scenario: HashMap<String, Vec<Entry>> = HashMap::new();
        for row in &table.rows {
            let figure = match (row.joules_per_frame, row.estimated_joules_per_frame) {
                (Some(j), _) if row.energy_samples > 0 => Figure {
                    joules_per_frame: j,
                    samples: row.energy_samples,
                },
                (_, Some(j)) if row.estimated_samples > 0 => Figure {
                    joules_per_frame: j,
                    samples: row.estimated_samples,
                },
                _ => continue,
            };
            by_scenario.entry(row.scenario.clone()).or_default().push(Entry {
                node: row.node_id.clone(),
                encoder: row.encoder.clone(),
                figure,
            });
        }
        Efficiency { by_scenario }
    }

    /// `node`'s figure for a job of `scenario` asking `req`: of its rows for that scenario
    /// whose encoder the job allows, the one with the most samples (the encoder the node
    /// usually picks). `None` when it has none.
    pub fn figure(&self, node: &str, scenario: &str, req: Option<&Requirements>) -> Option<Figure> {
        self.by_scenario
            .get(scenario)?
            .iter()
            .filter(|e| e.node == node && compatible(&e.encoder, req))
            .max_by(|a, b| {
                a.figure
                    .samples
                    .cmp(&b.figure.samples)
                    .then_with(|| b.encoder.cmp(&a.encoder))
            })
            .map(|e| e.figure)
    }
}

/// An [`Efficiency`] shared between the placement policy (reads, on every claim) and a
/// refresher (replaces it every few seconds). Cloning shares it.
#[derive(Clone, Default)]
pub struct SharedEfficiency(Arc<RwLock<Arc<Efficiency>>>);

impl SharedEfficiency {
    /// An empty table: every node and encoder unknown.
    pub fn new() -> Self {
        Self::default()
    }

    /// The table now (a cheap handle; later replacements do not change it).
    pub fn current(&self) -> Arc<Efficiency> {
        match self.0.read() {
            Ok(t) => t.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Replaces the table with the index of `table`.
    pub fn replace(&self, table: &EfficiencyTable) {
        let index = Arc::new(Efficiency::new(table));
        match self.0.write() {
            Ok(mut t) => *t = index,
            Err(poisoned) => *poisoned.into_inner() = index,
        }
    }
}

impl std::fmt::Debug for SharedEfficiency {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("SharedEfficiency").field(&self.current()).finish()
    }
}
