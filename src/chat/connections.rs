//! How many WebSocket connections each client address holds, so one address cannot take them all.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

#[derive(Clone)]
pub struct ConnectionLimit {
    per_address: usize,
    // A std Mutex: held for one increment or decrement, never across an await.
    counts: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

/// One connection's place in its address's count, given back when the session drops it.
pub struct Slot {
    address: IpAddr,
    limit: ConnectionLimit,
}

impl ConnectionLimit {
    pub fn new(per_address: usize) -> Self {
        Self {
            per_address,
            counts: Arc::default(),
        }
    }

    pub fn per_address(&self) -> usize {
        self.per_address
    }

    /// A slot for one more connection from `address`, or `None` at the limit.
    pub fn take(&self, address: IpAddr) -> Option<Slot> {
        let mut counts = self.lock();
        let count = counts.entry(address).or_default();
        if *count >= self.per_address {
            return None;
        }
        *count += 1;
        Some(Slot {
            address,
            limit: self.clone(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<IpAddr, usize>> {
        self.counts.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut counts = self.limit.lock();
        if let Some(count) = counts.get_mut(&self.address) {
            *count -= 1;
            // Forget addresses with no connections, so the map does not grow with every visitor.
            if *count == 0 {
                counts.remove(&self.address);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_gets_its_limit_and_no_more_until_a_slot_is_freed() {
        let limit = ConnectionLimit::new(2);
        let address: IpAddr = "10.0.0.1".parse().unwrap();
        let first = limit.take(address).unwrap();
        let _second = limit.take(address).unwrap();
        assert!(limit.take(address).is_none());
        assert!(
            limit.take("10.0.0.2".parse().unwrap()).is_some(),
            "other addresses are counted apart"
        );
        drop(first);
        assert!(limit.take(address).is_some());
    }
}
