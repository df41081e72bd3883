//! Connection limits: in total and per client address. A `Slot` holds one place and gives
//! it back when dropped, so a connection task that ends in any way frees its place.
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

#[derive(Debug)]
pub struct AddressLimiter {
    total: usize,
    per_address: usize,
    counts: Mutex<(usize, HashMap<IpAddr, usize>)>,
}

/// One connection's place; dropping it frees the place.
#[derive(Debug)]
pub struct Slot {
    limiter: Arc<AddressLimiter>,
    ip: IpAddr,
}

impl AddressLimiter {
    pub fn new(total: usize, per_address: usize) -> Self {
        AddressLimiter {
            total,
            per_address,
            counts: Mutex::new((0, HashMap::new())),
        }
    }

    /// A place for a connection from `ip`, or `None` when a limit is reached.
    pub fn acquire(self: &Arc<Self>, ip: IpAddr) -> Option<Slot> {
        let mut guard = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        let (total, per) = &mut *guard;
        let mine = per.entry(ip).or_insert(0);
        if *total >= self.total || *mine >= self.per_address {
            if *mine == 0 {
                per.remove(&ip);
            }
            return None;
        }
        *mine += 1;
        *total += 1;
        Some(Slot {
            limiter: self.clone(),
            ip,
        })
    }

    /// Connections open now (all, and from `ip`).
    pub fn open(&self, ip: IpAddr) -> (usize, usize) {
        let guard = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        (guard.0, guard.1.get(&ip).copied().unwrap_or(0))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut guard = self
            .limiter
            .counts
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let (total, per) = &mut *guard;
        *total -= 1;
        if let Some(n) = per.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                per.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_per_address_and_in_total() {
        let l = Arc::new(AddressLimiter::new(3, 2));
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let a1 = l.acquire(a).unwrap();
        let _a2 = l.acquire(a).unwrap();
        assert!(l.acquire(a).is_none(), "third from one address");
        let _b1 = l.acquire(b).unwrap();
        assert!(l.acquire(b).is_none(), "total reached");
        drop(a1);
        assert_eq!(l.open(a), (2, 1));
        assert!(l.acquire(b).is_some());
    }
}
