//! ffrtmp-http
