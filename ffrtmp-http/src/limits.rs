//! Connection limits of a server: how many connections one client address may hold, and
//! the deadlines for the TLS handshake, the request headers and the request body.
//!
//! Together they keep idle or slow clients from starving agents: a client address holds
//! at most [`ConnectionLimits::per_ip`] connections (more are closed at once), a
//! connection that does not finish its handshake or send its headers in time is closed, a
//! body trickled slower than [`ConnectionLimits::body_read_timeout`] allows is answered
//! with 408, and a request without a valid key gets 401 and its connection closed.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Per-connection limits of a server.
///
/// ```
/// use ffrtmp_http::ConnectionLimits;
/// let limits = ConnectionLimits::default();
/// assert_eq!(limits.per_ip, 256);
/// assert!(limits.handshake_timeout < limits.body_read_timeout);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Connections one client IP address may hold at once; further ones are closed right
    /// after `accept`. Default 256.
    pub per_ip: usize,
    /// A TLS handshake must finish within this time. Default 10 s.
    pub handshake_timeout: Duration,
    /// Request headers must arrive within this time; it also closes a kept-alive
    /// connection idle for this long. Default 30 s.
    pub header_read_timeout: Duration,
    /// A whole request body must arrive within this time (408 otherwise). Default 30 s.
    pub body_read_timeout: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            per_ip: 256,
            handshake_timeout: Duration::from_secs(10),
            header_read_timeout: Duration::from_secs(30),
            body_read_timeout: Duration::from_secs(30),
        }
    }
}

/// Open connections per client address.
#[derive(Clone, Debug, Default)]
pub(crate) struct PerIp {
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

impl PerIp {
    /// Counts a new connection from `ip`, or `None` when `ip` already holds `max`.
    pub(crate) fn admit(&self, ip: IpAddr, max: usize) -> Option<IpSlot> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let count = open.entry(ip).or_insert(0);
        if *count >= max.max(1) {
            return None;
        }
        *count += 1;
        Some(IpSlot {
            ip,
            open: self.open.clone(),
        })
    }
}

/// One counted connection; dropping it frees the slot.
#[derive(Debug)]
pub(crate) struct IpSlot {
    ip: IpAddr,
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = open.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_each_address_and_frees_slots() {
        let per_ip = PerIp::default();
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let first = per_ip.admit(a, 2).unwrap();
        let _second = per_ip.admit(a, 2).unwrap();
        assert!(per_ip.admit(a, 2).is_none());
        assert!(per_ip.admit(b, 2).is_some());
        drop(first);
        assert!(per_ip.admit(a, 2).is_some());
    }
}
