//! Finding a powercap tree's RAPL zones and choosing the ones a [`RaplSource`](super::RaplSource)
//! reads, so that no two overlap.

use std::collections::HashSet;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use ffrtmp_core::PowerError;

use super::{read_max_range, CounterError, ZoneInfo, ZoneSelection, MAX_DEPTH};

/// What a zone measures, from its `name` file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    /// `package-N` (or `package-N-die-M`).
    Package,
    /// `dram`, outside the package domain.
    Dram,
    /// `psys`, the platform: contains the packages.
    Psys,
    /// `core`, `uncore`: inside the package.
    Contained,
    /// Anything else; never read.
    Other,
}

pub(super) fn kind_of(label: &str) -> Kind {
    match label {
        "dram" => Kind::Dram,
        "psys" => Kind::Psys,
        "core" | "uncore" => Kind::Contained,
        l if l.starts_with("package") => Kind::Package,
        _ => Kind::Other,
    }
}

/// One zone directory found under the root.
#[derive(Clone, Debug)]
pub(super) struct Entry {
    /// Directory name, e.g. `intel-rapl:0:2`.
    id: String,
    /// Control type, e.g. `intel-rapl`, `intel-rapl-mmio`.
    control: String,
    /// Zone indices, e.g. `[0, 2]`.
    indices: Vec<u32>,
    path: PathBuf,
    /// Contents of the `name` file.
    label: String,
}

/// Splits `intel-rapl:0:2` into `("intel-rapl", [0, 2])`; `None` for non-zones like `intel-rapl`.
pub(super) fn parse_id(id: &str) -> Option<(&str, Vec<u32>)> {
    let mut parts = id.split(':');
    let control = parts.next().filter(|c| c.contains("rapl"))?;
    let indices = parts.map(|p| p.parse().ok()).collect::<Option<Vec<u32>>>()?;
    if indices.is_empty() {
        return None;
    }
    Some((control, indices))
}

/// Every RAPL zone under `root`, flat or nested, each once, sorted (`intel-rapl` before
/// `intel-rapl-mmio`, parents before their subzones).
pub(super) fn discover(root: &Path) -> Result<Vec<Entry>, PowerError> {
    let dir = match fs::read_dir(root) {
        Ok(dir) => dir,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(PowerError::Unavailable(format!(
                "no powercap interface at {} (no RAPL driver, or a VM)",
                root.display()
            )))
        }
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
            return Err(PowerError::Unavailable(format!(
                "needs root or read access to {}",
                root.display()
            )))
        }
        Err(e) => return Err(PowerError::Unavailable(format!("cannot read {}: {e}", root.display()))),
    };
    let mut seen = HashSet::new();
    let mut entries = Vec::new();
    collect(dir, 0, &mut seen, &mut entries);
    entries.sort_by(|a, b| {
        let mmio = |e: &Entry| e.control.contains("mmio");
        (mmio(a), &a.control, &a.indices).cmp(&(mmio(b), &b.control, &b.indices))
    });
    Ok(entries)
}

fn collect(dir: fs::ReadDir, depth: usize, seen: &mut HashSet<String>, out: &mut Vec<Entry>) {
    for item in dir.flatten() {
        let file_name = item.file_name();
        let Some(id) = file_name.to_str() else { continue };
        let Some((control, indices)) = parse_id(id) else {
            continue;
        };
        let path = item.path();
        if !path.is_dir() {
            continue;
        }
        if seen.insert(id.to_string()) {
            match fs::read_to_string(path.join("name")) {
                Ok(label) => out.push(Entry {
                    id: id.to_string(),
                    control: control.to_string(),
                    indices,
                    path: path.clone(),
                    label: label.trim().to_string(),
                }),
                Err(e) => tracing::debug!(zone = %path.display(), error = %e, "skipping zone without a name"),
            }
        }
        if depth + 1 < MAX_DEPTH {
            if let Ok(sub) = fs::read_dir(&path) {
                collect(sub, depth + 1, seen, out);
            }
        }
    }
}

/// The unique name of `entry` in samples, or `None` when the selection does not read it.
pub(super) fn zone_name(entry: &Entry, entries: &[Entry], selection: ZoneSelection) -> Option<String> {
    match (kind_of(&entry.label), selection) {
        (Kind::Package, ZoneSelection::PackagesAndDram) => Some(entry.label.clone()),
        (Kind::Dram, ZoneSelection::PackagesAndDram) => Some(dram_name(entry, entries)),
        (Kind::Psys, ZoneSelection::Psys) => Some("psys".to_string()),
        _ => None,
    }
}

/// `dram-0` for the DRAM of `package-0` (`dram-0-die-1` for `package-0-die-1`).
pub(super) fn dram_name(entry: &Entry, entries: &[Entry]) -> String {
    let parent_id = entry.id.rsplit_once(':').map(|(parent, _)| parent);
    let parent = entries
        .iter()
        .find(|e| Some(e.id.as_str()) == parent_id && entry.indices.len() > 1);
    match parent.and_then(|p| p.label.strip_prefix("package-")) {
        Some(suffix) => format!("dram-{suffix}"),
        None => format!("dram-{}", entry.indices[0]),
    }
}

/// The zones of `selection`, each read once: a later zone with a name already taken (an
/// `intel-rapl-mmio` copy of a package) is skipped.
pub(super) fn select(root: &Path, entries: &[Entry], selection: ZoneSelection) -> Result<Vec<ZoneInfo>, PowerError> {
    if entries.is_empty() {
        return Err(PowerError::Unavailable(format!(
            "no RAPL zones under {}",
            root.display()
        )));
    }
    let mut zones: Vec<ZoneInfo> = Vec::new();
    let mut has_package = false;
    for entry in entries {
        let Some(name) = zone_name(entry, entries, selection) else {
            continue;
        };
        if zones.iter().any(|z| z.name == name) {
            tracing::debug!(zone = %entry.path.display(), name, "skipping duplicate RAPL zone");
            continue;
        }
        has_package |= kind_of(&entry.label) == Kind::Package;
        let max_energy_range_uj = read_max_range(&entry.path).map_err(CounterError::unavailable)?;
        zones.push(ZoneInfo {
            name,
            path: entry.path.clone(),
            max_energy_range_uj,
        });
    }
    let found = || entries.iter().map(|e| e.label.as_str()).collect::<Vec<_>>().join(", ");
    match selection {
        ZoneSelection::PackagesAndDram if !has_package => Err(PowerError::Unavailable(format!(
            "no RAPL package zones under {} (found: {})",
            root.display(),
            found()
        ))),
        ZoneSelection::Psys if zones.is_empty() => Err(PowerError::Unavailable(format!(
            "no RAPL psys zone under {} (found: {})",
            root.display(),
            found()
        ))),
        _ => Ok(zones),
    }
}
