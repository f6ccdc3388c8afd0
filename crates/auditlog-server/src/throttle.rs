//! Throttling of failed sign-ins, per account and per client address, in memory.
//!
//! An account gets `free_failures` wrong passwords; after that each failure locks it for
//! `base_delay · 2^(n − free)` up to `max_delay`, and an attempt while locked is refused with
//! 429 before the password is even checked. An address gets `free_failures_per_ip` failures
//! (over all accounts) before the same happens to it. A success clears the account's count.
//! Counts are forgotten `window` after the last failure.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy)]
pub struct ThrottleConfig {
    pub free_failures: u32,
    pub free_failures_per_ip: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
    pub window: Duration,
}

impl Default for ThrottleConfig {
    fn default() -> Self {
        ThrottleConfig {
            free_failures: 5,
            free_failures_per_ip: 20,
            base_delay: Duration::from_secs(30),
            max_delay: Duration::from_secs(15 * 60),
            window: Duration::from_secs(15 * 60),
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    failures: u32,
    last_failure: Instant,
    locked_until: Option<Instant>,
}

/// Most entries kept per map; older ones are pruned first.
const MAX_ENTRIES: usize = 100_000;

#[derive(Debug)]
pub struct Throttle {
    config: ThrottleConfig,
    accounts: Mutex<HashMap<String, Entry>>,
    addresses: Mutex<HashMap<IpAddr, Entry>>,
}

impl Throttle {
    pub fn new(config: ThrottleConfig) -> Throttle {
        Throttle {
            config,
            accounts: Mutex::new(HashMap::new()),
            addresses: Mutex::new(HashMap::new()),
        }
    }

    /// `Err(wait)` when the account or the address must wait before trying again.
    pub fn check(&self, account: &str, ip: IpAddr, now: Instant) -> Result<(), Duration> {
        let wait = |entry: Option<&Entry>| {
            entry
                .and_then(|e| e.locked_until)
                .and_then(|until| until.checked_duration_since(now))
                .filter(|d| !d.is_zero())
        };
        let accounts = self.accounts.lock().unwrap_or_else(|e| e.into_inner());
        let addresses = self.addresses.lock().unwrap_or_else(|e| e.into_inner());
        match (wait(accounts.get(account)), wait(addresses.get(&ip))) {
            (None, None) => Ok(()),
            (a, b) => Err(a.unwrap_or_default().max(b.unwrap_or_default())),
        }
    }

    pub fn failure(&self, account: &str, ip: IpAddr, now: Instant) {
        let config = self.config;
        let bump = |entry: &mut Entry, free: u32| {
            if now.duration_since(entry.last_failure) > config.window {
                entry.failures = 0;
                entry.locked_until = None;
            }
            entry.failures += 1;
            entry.last_failure = now;
            if entry.failures >= free {
                let over = (entry.failures - free).min(20);
                let delay = config
                    .base_delay
                    .saturating_mul(1 << over)
                    .min(config.max_delay);
                entry.locked_until = Some(now + delay);
            }
        };
        let fresh = Entry {
            failures: 0,
            last_failure: now,
            locked_until: None,
        };
        {
            let mut accounts = self.accounts.lock().unwrap_or_else(|e| e.into_inner());
            prune(&mut accounts, now, config.window);
            bump(
                accounts.entry(account.to_owned()).or_insert(fresh),
                config.free_failures,
            );
        }
        let mut addresses = self.addresses.lock().unwrap_or_else(|e| e.into_inner());
        prune(&mut addresses, now, config.window);
        bump(
            addresses.entry(ip).or_insert(fresh),
            config.free_failures_per_ip,
        );
    }

    pub fn success(&self, account: &str) {
        self.accounts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(account);
    }
}

fn prune<K: std::hash::Hash + Eq + Clone>(
    map: &mut HashMap<K, Entry>,
    now: Instant,
    window: Duration,
) {
    if map.len() < MAX_ENTRIES {
        return;
    }
    map.retain(|_, e| now.duration_since(e.last_failure) <= window);
    if map.len() >= MAX_ENTRIES {
        // Still full of fresh entries (an attack from many names): forget the oldest half.
        let mut ages: Vec<Instant> = map.values().map(|e| e.last_failure).collect();
        ages.sort_unstable();
        let cut = ages[ages.len() / 2];
        map.retain(|_, e| e.last_failure > cut);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_account_locks_after_its_free_failures_and_unlocks_later() {
        let throttle = Throttle::new(ThrottleConfig::default());
        let ip = IpAddr::from([192, 0, 2, 1]);
        let t0 = Instant::now();
        for _ in 0..4 {
            assert!(throttle.check("t/alice", ip, t0).is_ok());
            throttle.failure("t/alice", ip, t0);
        }
        assert!(throttle.check("t/alice", ip, t0).is_ok());
        throttle.failure("t/alice", ip, t0);
        let wait = throttle.check("t/alice", ip, t0).expect_err("locked");
        assert_eq!(wait, Duration::from_secs(30));
        assert!(
            throttle
                .check("t/bob", IpAddr::from([192, 0, 2, 2]), t0)
                .is_ok()
        );
        assert!(
            throttle
                .check("t/alice", ip, t0 + Duration::from_secs(31))
                .is_ok()
        );
        throttle.failure("t/alice", ip, t0 + Duration::from_secs(31));
        let wait = throttle
            .check("t/alice", ip, t0 + Duration::from_secs(31))
            .expect_err("locked longer");
        assert_eq!(wait, Duration::from_secs(60));
        throttle.success("t/alice");
        assert!(
            throttle
                .check("t/alice", IpAddr::from([192, 0, 2, 3]), t0)
                .is_ok()
        );
    }

    #[test]
    fn an_address_trying_many_accounts_is_locked() {
        let throttle = Throttle::new(ThrottleConfig::default());
        let ip = IpAddr::from([192, 0, 2, 9]);
        let t0 = Instant::now();
        for n in 0..20 {
            throttle.failure(&format!("t/user{n}"), ip, t0);
        }
        assert!(throttle.check("t/someone-else", ip, t0).is_err());
        assert!(
            throttle
                .check("t/someone-else", IpAddr::from([192, 0, 2, 10]), t0)
                .is_ok()
        );
    }
}
