//! Identifiers of jobs and nodes.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident, $make:expr) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            /// A fresh random identifier.
            pub fn new() -> Self {
                Self($make)
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }
    };
}

uuid_id!(
    /// Identifier of a job (a UUID).
    ///
    /// ```
    /// use ffrtmp_core::JobId;
    /// let id = JobId::new();
    /// let parsed: JobId = id.to_string().parse().unwrap();
    /// assert_eq!(id, parsed);
    /// ```
    ///
    /// Job ids are UUIDv7: time-ordered, so stores index new jobs at the end of their
    /// B-trees instead of at random pages.
    JobId,
    Uuid::now_v7()
);

uuid_id!(
    /// Identifier of a worker node, assigned by the master at registration.
    NodeId,
    Uuid::new_v4()
);
