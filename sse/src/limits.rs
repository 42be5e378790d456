//! Connection caps: streams per process (`503`) and per user (`429`). A [`ConnectionGuard`] holds one slot
//! and gives it back when the stream is dropped, however it ends.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use scoreboard_shared::problem::ApiError;

use crate::telemetry;

#[derive(Debug, Default)]
struct Counts {
    total: usize,
    per_user: HashMap<String, usize>,
}

/// Counts open streams against the two caps.
#[derive(Debug, Clone)]
pub struct ConnectionLimiter {
    max_total: usize,
    max_per_user: usize,
    counts: Arc<Mutex<Counts>>,
}

impl ConnectionLimiter {
    pub fn new(max_total: usize, max_per_user: usize) -> Self {
        Self {
            max_total,
            max_per_user,
            counts: Arc::default(),
        }
    }

    /// Takes a slot for `user`.
    ///
    /// # Errors
    /// `TooManyConnections { per_user: false }` when the process is full (checked first),
    /// `TooManyConnections { per_user: true }` when this user already holds their share.
    pub fn try_acquire(&self, user: &str) -> Result<ConnectionGuard, ApiError> {
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        if counts.total >= self.max_total {
            telemetry::rejected("process_cap");
            return Err(ApiError::TooManyConnections { per_user: false });
        }
        let held = counts.per_user.get(user).copied().unwrap_or(0);
        if held >= self.max_per_user {
            telemetry::rejected("user_cap");
            return Err(ApiError::TooManyConnections { per_user: true });
        }
        counts.total += 1;
        counts.per_user.insert(user.to_owned(), held + 1);
        metrics::gauge!(telemetry::CONNECTIONS).set(counts.total as f64);
        Ok(ConnectionGuard {
            limiter: self.clone(),
            user: user.to_owned(),
        })
    }

    /// Open streams now.
    pub fn open(&self) -> usize {
        self.counts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .total
    }

    fn release(&self, user: &str) {
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        counts.total = counts.total.saturating_sub(1);
        if let Some(held) = counts.per_user.get_mut(user) {
            *held -= 1;
            if *held == 0 {
                counts.per_user.remove(user);
            }
        }
        metrics::gauge!(telemetry::CONNECTIONS).set(counts.total as f64);
    }
}

/// One open stream's slot; released on drop.
#[derive(Debug)]
pub struct ConnectionGuard {
    limiter: ConnectionLimiter,
    user: String,
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.limiter.release(&self.user);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_user_cap_is_429_and_process_cap_is_503() {
        let limiter = ConnectionLimiter::new(3, 2);
        let a1 = limiter.try_acquire("a").unwrap();
        let _a2 = limiter.try_acquire("a").unwrap();
        let err = limiter.try_acquire("a").unwrap_err();
        assert!(matches!(
            err,
            ApiError::TooManyConnections { per_user: true }
        ));
        let _b1 = limiter.try_acquire("b").unwrap();
        let err = limiter.try_acquire("c").unwrap_err();
        assert!(matches!(
            err,
            ApiError::TooManyConnections { per_user: false }
        ));
        drop(a1);
        assert_eq!(limiter.open(), 2);
        assert!(limiter.try_acquire("a").is_ok());
    }

    #[test]
    fn slots_come_back_when_guards_drop() {
        let limiter = ConnectionLimiter::new(10, 1);
        drop(limiter.try_acquire("a").unwrap());
        assert_eq!(limiter.open(), 0);
        assert!(limiter.try_acquire("a").is_ok());
    }
}
