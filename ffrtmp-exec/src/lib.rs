//! ffrtmp-exec
