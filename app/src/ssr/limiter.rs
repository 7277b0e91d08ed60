//! Failed-login throttling.
//!
//! Counted per username and per client address, so neither guessing one account's password
//! nor spraying many accounts from one address goes fast. A success clears the username's
//! count (not the address's: a sprayer that knows one password must not reset its budget).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failures allowed per username before blocking starts.
const USER_THRESHOLD: u32 = 5;
/// Failures allowed per client address before blocking starts.
const ADDR_THRESHOLD: u32 = 20;
/// First block; doubles with every further failure.
const BASE_BLOCK: Duration = Duration::from_secs(30);
/// Longest block.
const MAX_BLOCK: Duration = Duration::from_secs(15 * 60);
/// Failures older than this are forgotten.
const WINDOW: Duration = Duration::from_secs(15 * 60);
/// Above this many tracked keys, forgotten ones are swept (bounds memory under a spray).
const SWEEP_ABOVE: usize = 10_000;

#[derive(Debug, Clone, Copy)]
struct Entry {
    failures: u32,
    last_failure: Instant,
    blocked_until: Option<Instant>,
}

/// Shared by every login path. The mutex is held only for map updates, never across IO.
#[derive(Debug, Default)]
pub struct LoginLimiter {
    entries: Mutex<HashMap<String, Entry>>,
}

fn keys(username: &str, addr: Option<&str>) -> [(String, u32); 2] {
    [
        (format!("user:{}", username.to_lowercase()), USER_THRESHOLD),
        (
            format!("addr:{}", addr.unwrap_or("unknown")),
            ADDR_THRESHOLD,
        ),
    ]
}

impl LoginLimiter {
    /// `Err(wait)` when a login for `username` from `addr` must be refused without even
    /// checking the password.
    pub fn check(&self, username: &str, addr: Option<&str>) -> Result<(), Duration> {
        self.check_at(username, addr, Instant::now())
    }

    fn check_at(&self, username: &str, addr: Option<&str>, now: Instant) -> Result<(), Duration> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let wait = keys(username, addr)
            .iter()
            .filter_map(|(k, _)| entries.get(k)?.blocked_until)
            .filter(|until| *until > now)
            .map(|until| until - now)
            .max();
        match wait {
            Some(w) => Err(w),
            None => Ok(()),
        }
    }

    /// Counts a failed attempt.
    pub fn failure(&self, username: &str, addr: Option<&str>) {
        self.failure_at(username, addr, Instant::now());
    }

    fn failure_at(&self, username: &str, addr: Option<&str>, now: Instant) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() > SWEEP_ABOVE {
            entries.retain(|_, e| {
                now.duration_since(e.last_failure) < WINDOW
                    || e.blocked_until.is_some_and(|u| u > now)
            });
        }
        for (key, threshold) in keys(username, addr) {
            let e = entries.entry(key).or_insert(Entry {
                failures: 0,
                last_failure: now,
                blocked_until: None,
            });
            if now.duration_since(e.last_failure) >= WINDOW {
                e.failures = 0;
            }
            e.failures += 1;
            e.last_failure = now;
            if e.failures >= threshold {
                let doublings = (e.failures - threshold).min(16);
                let block = BASE_BLOCK.saturating_mul(1 << doublings).min(MAX_BLOCK);
                e.blocked_until = Some(now + block);
            }
        }
    }

    /// Clears the username's count after a successful login.
    pub fn success(&self, username: &str) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries.remove(&format!("user:{}", username.to_lowercase()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_after_threshold_and_backs_off() {
        let l = LoginLimiter::default();
        let t0 = Instant::now();
        for i in 0..USER_THRESHOLD - 1 {
            l.failure_at("Admin", Some("1.2.3.4"), t0);
            assert!(
                l.check_at("admin", Some("1.2.3.4"), t0).is_ok(),
                "after {}",
                i + 1
            );
        }
        l.failure_at("admin", Some("1.2.3.4"), t0);
        let wait = l
            .check_at("admin", Some("5.6.7.8"), t0)
            .expect_err("blocked");
        assert_eq!(wait, BASE_BLOCK);
        // Another user from the same address is not blocked yet.
        assert!(l.check_at("bob", Some("1.2.3.4"), t0).is_ok());
        // After the block, the next failure doubles it.
        let t1 = t0 + BASE_BLOCK;
        assert!(l.check_at("admin", None, t1).is_ok());
        l.failure_at("admin", None, t1);
        assert_eq!(l.check_at("admin", None, t1), Err(BASE_BLOCK * 2));
        l.success("ADMIN");
        assert!(l.check_at("admin", None, t1).is_ok());
    }

    #[test]
    fn address_spraying_is_blocked() {
        let l = LoginLimiter::default();
        let t0 = Instant::now();
        for i in 0..ADDR_THRESHOLD {
            l.failure_at(&format!("user{i}"), Some("9.9.9.9"), t0);
        }
        assert!(l.check_at("someone-new", Some("9.9.9.9"), t0).is_err());
        assert!(l.check_at("someone-new", Some("8.8.8.8"), t0).is_ok());
    }

    #[test]
    fn old_failures_are_forgotten() {
        let l = LoginLimiter::default();
        let t0 = Instant::now();
        for _ in 0..USER_THRESHOLD - 1 {
            l.failure_at("carol", None, t0);
        }
        l.failure_at("carol", None, t0 + WINDOW);
        assert!(l.check_at("carol", None, t0 + WINDOW).is_ok());
    }
}
