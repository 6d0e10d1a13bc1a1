//! Energy counters for ffrtmp: RAPL through Linux powercap, and per-job energy reports.
//!
//! - [`RaplSource`] implements [`ffrtmp_core::PowerSource`] over `/sys/class/powercap`, or any
//!   directory laid out the same way (a file-backed source for tests and VMs, same code path).
//!   By default it reads every `package-N` zone and every `dram` subzone; `core` and `uncore`
//!   are inside their package and `psys` contains the packages, so they are never summed with
//!   them ([`ZoneSelection::Psys`] reads `psys` alone). Counter wraps are corrected.
//! - [`EnergyMeter`] samples a source at the start and end of a job and builds the job's
//!   [`ffrtmp_core::EnergyReport`]; [`unavailable_report`] records why energy is missing instead
//!   of reporting zero.
//!
//! Energy is whole-node energy over the job's interval. Per-job attribution by cgroup CPU share
//! comes later.
//!
//! Where there is no meter the reason is kept, as [`ffrtmp_core::PowerError::Unavailable`]:
//! `no powercap interface at <root> (no RAPL driver, or a VM)`, `no RAPL zones under <root>`,
//! or `needs root or read access to <zone>/energy_uj` (kernels since 2020 make `energy_uj`
//! readable by root only).
#![warn(missing_docs)]

mod meter;
mod rapl;

pub use meter::{energy_report, unavailable_report, EnergyInterval, EnergyMeter, UNAVAILABLE_SOURCE};
pub use rapl::{RaplSource, ZoneInfo, ZoneSelection, SYSTEM_POWERCAP};
