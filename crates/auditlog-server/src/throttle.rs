//! Throttling of failed sign-ins, in memory, decided before the password is checked.
//!
//! Every attempt first *reserves* itself (`Throttle::reserve`): in one step under one lock the
//! limits are checked and the attempt is counted as a failure, so parallel guesses cannot all
//! pass the check before any of them is counted. A success gives its reservation back
//! (`Attempt::succeeded`); anything else keeps it.
//!
//! Three limits, so that nobody can lock an account or a whole NAT for long from elsewhere:
//! - per (account, address): `free_failures` tries, then each further failure locks that pair
//!   for `base_delay · 2^(n − free)` up to `max_delay` (the guesser is slowed down hard);
//! - per address, over all accounts: `free_failures_per_ip` tries before the same back-off;
//! - per account, from every address: `free_failures_per_account` tries, then a much slower
//!   back-off (`account_base_delay` doubling up to `account_max_delay`), so a distributed
//!   guesser is slowed while the real person is never shut out for more than that.
//!
//! Addresses are keyed as given for IPv4 and by their /64 for IPv6 (one host usually holds a
//! whole /64). Counts are forgotten `window` after the last failure. Locked attempts answer 429
//! before the password is checked and leave no trail record.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy)]
pub struct ThrottleConfig {
    pub free_failures: u32,
    pub free_failures_per_ip: u32,
    pub free_failures_per_account: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
    pub account_base_delay: Duration,
    pub account_max_delay: Duration,
    pub window: Duration,
}

impl Default for ThrottleConfig {
    fn default() -> Self {
        ThrottleConfig {
            free_failures: 5,
            free_failures_per_ip: 20,
            free_failures_per_account: 20,
            base_delay: Duration::from_secs(30),
            max_delay: Duration::from_secs(15 * 60),
            account_base_delay: Duration::from_secs(2),
            account_max_delay: Duration::from_secs(60),
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

impl Entry {
    fn fresh(now: Instant) -> Entry {
        Entry {
            failures: 0,
            last_failure: now,
            locked_until: None,
        }
    }

    fn wait(&self, now: Instant) -> Option<Duration> {
        self.locked_until
            .and_then(|until| until.checked_duration_since(now))
            .filter(|d| !d.is_zero())
    }

    /// Counts one failure; locks once `free` are used up.
    fn bump(&mut self, now: Instant, free: u32, base: Duration, max: Duration, window: Duration) {
        if now.duration_since(self.last_failure) > window {
            self.failures = 0;
            self.locked_until = None;
        }
        self.failures += 1;
        self.last_failure = now;
        if self.failures >= free {
            let over = (self.failures - free).min(20);
            self.locked_until = Some(now + base.saturating_mul(1 << over).min(max));
        }
    }

    /// Gives one counted failure back (a reservation that turned out a success).
    fn unbump(&mut self, free: u32) {
        self.failures = self.failures.saturating_sub(1);
        if self.failures < free {
            self.locked_until = None;
        }
    }
}

/// The address as the throttle counts it: IPv4 whole, IPv6 by its /64.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AddrKey(IpAddr);

impl AddrKey {
    pub fn of(ip: IpAddr) -> AddrKey {
        match ip {
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => AddrKey(IpAddr::V4(v4)),
                None => {
                    let s = v6.segments();
                    AddrKey(IpAddr::V6(Ipv6Addr::new(
                        s[0], s[1], s[2], s[3], 0, 0, 0, 0,
                    )))
                }
            },
            v4 => AddrKey(v4),
        }
    }
}

#[derive(Debug, Default)]
struct Counts {
    pairs: HashMap<(String, AddrKey), Entry>,
    accounts: HashMap<String, Entry>,
    addresses: HashMap<AddrKey, Entry>,
}

/// Most entries kept per map; older ones are pruned first.
const MAX_ENTRIES: usize = 100_000;

#[derive(Debug)]
pub struct Throttle {
    config: ThrottleConfig,
    counts: Mutex<Counts>,
}

/// A reserved sign-in attempt: already counted as a failure until `succeeded` is called.
#[must_use]
pub struct Attempt {
    throttle: Arc<Throttle>,
    account: String,
    addr: AddrKey,
}

impl Attempt {
    /// The password was right: the reservation is given back and the pair's count cleared.
    pub fn succeeded(self) {
        let config = self.throttle.config;
        let mut counts = self.throttle.lock();
        counts.pairs.remove(&(self.account.clone(), self.addr));
        if let Some(entry) = counts.accounts.get_mut(&self.account) {
            entry.unbump(config.free_failures_per_account);
        }
        if let Some(entry) = counts.addresses.get_mut(&self.addr) {
            entry.unbump(config.free_failures_per_ip);
        }
    }
}

impl Throttle {
    pub fn new(config: ThrottleConfig) -> Throttle {
        Throttle {
            config,
            counts: Mutex::new(Counts::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Counts> {
        self.counts.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Checks every limit and, if none holds the attempt back, counts it as a failure, in one
    /// step. `Err(wait)` when the attempt must wait (nothing is counted then).
    pub fn reserve(
        self: &Arc<Self>,
        account: &str,
        ip: IpAddr,
        now: Instant,
    ) -> Result<Attempt, Duration> {
        let config = self.config;
        let addr = AddrKey::of(ip);
        let pair = (account.to_owned(), addr);
        let mut counts = self.lock();
        let waits = [
            counts.pairs.get(&pair).and_then(|e| e.wait(now)),
            counts.addresses.get(&addr).and_then(|e| e.wait(now)),
            counts.accounts.get(account).and_then(|e| e.wait(now)),
        ];
        if let Some(wait) = waits.into_iter().flatten().max() {
            return Err(wait);
        }
        let window = config.window;
        prune(&mut counts.pairs, now, window);
        prune(&mut counts.addresses, now, window);
        prune(&mut counts.accounts, now, window);
        counts.pairs.entry(pair).or_insert(Entry::fresh(now)).bump(
            now,
            config.free_failures,
            config.base_delay,
            config.max_delay,
            window,
        );
        counts
            .addresses
            .entry(addr)
            .or_insert(Entry::fresh(now))
            .bump(
                now,
                config.free_failures_per_ip,
                config.base_delay,
                config.max_delay,
                window,
            );
        counts
            .accounts
            .entry(account.to_owned())
            .or_insert(Entry::fresh(now))
            .bump(
                now,
                config.free_failures_per_account,
                config.account_base_delay,
                config.account_max_delay,
                window,
            );
        Ok(Attempt {
            throttle: Arc::clone(self),
            account: account.to_owned(),
            addr,
        })
    }
}

fn prune<K: Hash + Eq + Clone>(map: &mut HashMap<K, Entry>, now: Instant, window: Duration) {
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

    fn throttle() -> Arc<Throttle> {
        Arc::new(Throttle::new(ThrottleConfig::default()))
    }

    #[test]
    fn a_pair_locks_after_its_free_failures_and_unlocks_later() {
        let throttle = throttle();
        let ip = IpAddr::from([192, 0, 2, 1]);
        let t0 = Instant::now();
        for _ in 0..5 {
            let _failed = throttle.reserve("t/alice", ip, t0).expect("free");
        }
        let wait = throttle.reserve("t/alice", ip, t0).err().expect("locked");
        assert_eq!(wait, Duration::from_secs(30));
        // The same account from elsewhere, and another account from here, still may try.
        assert!(
            throttle
                .reserve("t/alice", IpAddr::from([192, 0, 2, 2]), t0)
                .is_ok()
        );
        assert!(throttle.reserve("t/bob", ip, t0).is_ok());
        let later = t0 + Duration::from_secs(31);
        let _failed = throttle.reserve("t/alice", ip, later).expect("unlocked");
        let wait = throttle
            .reserve("t/alice", ip, later)
            .err()
            .expect("longer");
        assert_eq!(wait, Duration::from_secs(60));
    }

    #[test]
    fn a_success_gives_its_reservation_back() {
        let throttle = throttle();
        let ip = IpAddr::from([192, 0, 2, 1]);
        let t0 = Instant::now();
        for _ in 0..4 {
            let _failed = throttle.reserve("t/alice", ip, t0).expect("free");
        }
        throttle
            .reserve("t/alice", ip, t0)
            .expect("fifth")
            .succeeded();
        for _ in 0..4 {
            let _failed = throttle.reserve("t/alice", ip, t0).expect("cleared");
        }
    }

    #[test]
    fn an_address_trying_many_accounts_is_locked_and_ipv6_counts_by_its_64() {
        let throttle = throttle();
        let t0 = Instant::now();
        for n in 0..20u16 {
            let ip = IpAddr::from([0x2001, 0xdb8, 0, 1, n, n, n, n]);
            let _failed = throttle
                .reserve(&format!("t/user{n}"), ip, t0)
                .expect("free");
        }
        let same_64 = IpAddr::from([0x2001, 0xdb8, 0, 1, 9, 9, 9, 9]);
        assert!(throttle.reserve("t/someone-else", same_64, t0).is_err());
        let other_64 = IpAddr::from([0x2001, 0xdb8, 0, 2, 0, 0, 0, 1]);
        assert!(throttle.reserve("t/someone-else", other_64, t0).is_ok());
    }

    #[test]
    fn an_account_guessed_from_everywhere_backs_off_slowly() {
        let throttle = throttle();
        let t0 = Instant::now();
        for n in 0..20u8 {
            let _failed = throttle
                .reserve("t/alice", IpAddr::from([198, 51, 100, n]), t0)
                .expect("free");
        }
        let wait = throttle
            .reserve("t/alice", IpAddr::from([203, 0, 113, 1]), t0)
            .err()
            .expect("account backs off");
        assert_eq!(wait, Duration::from_secs(2));
        assert!(
            throttle
                .reserve("t/alice", IpAddr::from([203, 0, 113, 1]), t0 + wait)
                .is_ok()
        );
    }
}
