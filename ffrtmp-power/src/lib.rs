//! ffrtmp-power
