//! End-to-end behaviour of the SQLite store on real database files: the store conformance
//! suite (`ffrtmp_sched::conformance`), which `tests/postgres_store.rs` runs against PostgreSQL.

use ffrtmp_sched::conformance::SqliteBackend;
use ffrtmp_sched::conformance_tests;

conformance_tests!(Some(SqliteBackend::new()));
