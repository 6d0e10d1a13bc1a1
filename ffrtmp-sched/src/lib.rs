//! ffrtmp-sched
