//! A small, bounded cache of resolved identities for the sign-in path.
//!
//! The atproto OAuth profile asks clients to keep identity data for less than ten
//! minutes while signing someone in: a handle can move to another DID and an
//! account to another PDS, and a stale answer would send the person to the
//! wrong server. [`IdentityCache`] never keeps an entry longer than
//! [`MAX_TTL`], forgets the oldest entry when full, and takes `now` from the
//! caller like everything else in core.

use std::collections::HashMap;
use std::time::Duration;

use super::resolver::ResolvedIdentity;
use super::syntax::AtIdentifier;
use crate::time::UnixTime;

/// The longest any entry is kept: just under the profile's ten minutes.
pub const MAX_TTL: Duration = Duration::from_secs(9 * 60 + 59);

/// Resolved identities by what was typed, each with the time it stops counting.
#[derive(Clone, Debug)]
pub struct IdentityCache {
    ttl: Duration,
    capacity: usize,
    entries: HashMap<String, (ResolvedIdentity, UnixTime)>,
}

impl IdentityCache {
    /// A cache of at most `capacity` entries kept for `ttl`, which is capped at
    /// [`MAX_TTL`].
    #[must_use]
    pub fn new(ttl: Duration, capacity: usize) -> Self {
        Self {
            ttl: ttl.min(MAX_TTL),
            capacity,
            entries: HashMap::new(),
        }
    }

    /// The identity resolved for `identifier`, if resolved less than the TTL ago.
    #[must_use]
    pub fn get(&self, identifier: &AtIdentifier, now: UnixTime) -> Option<&ResolvedIdentity> {
        let (identity, expires) = self.entries.get(&identifier.to_string())?;
        (now < *expires).then_some(identity)
    }

    /// Remembers `identity` as the answer for `identifier`, resolved at `now`.
    ///
    /// Expired entries go first when the cache is full, then the one that would
    /// expire soonest.
    pub fn insert(&mut self, identifier: &AtIdentifier, identity: ResolvedIdentity, now: UnixTime) {
        if self.capacity == 0 {
            return;
        }
        let key = identifier.to_string();
        if !self.entries.contains_key(&key) && self.entries.len() >= self.capacity {
            self.entries.retain(|_, (_, expires)| now < *expires);
            if self.entries.len() >= self.capacity {
                let soonest = self.entries.iter().min_by_key(|(_, (_, expires))| *expires);
                if let Some(soonest) = soonest.map(|(key, _)| key.clone()) {
                    self.entries.remove(&soonest);
                }
            }
        }
        self.entries
            .insert(key, (identity, now.saturating_add(self.ttl)));
    }

    /// Forgets what is known about `identifier` (after a failed sign-in, say).
    pub fn remove(&mut self, identifier: &AtIdentifier) {
        self.entries.remove(&identifier.to_string());
    }

    /// How many entries are held, expired or not.
    #[must_use]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no entry is held.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Mode;

    fn identifier(text: &str) -> AtIdentifier {
        AtIdentifier::parse(text, Mode::Production).expect("valid")
    }

    fn identity(did: &str) -> ResolvedIdentity {
        ResolvedIdentity {
            did: crate::identity::Did::parse(did, Mode::Production).expect("valid"),
            handle: None,
            pds: url::Url::parse("https://pds.example.com").expect("url"),
        }
    }

    const T0: UnixTime = UnixTime::from_secs(1_700_000_000);
    const ALICE: &str = "did:plc:ewvi7nxzyoun6zhxrhs64oiz";

    #[test]
    fn entries_expire_after_the_ttl() {
        let mut cache = IdentityCache::new(Duration::from_secs(300), 10);
        cache.insert(&identifier("alice.example.com"), identity(ALICE), T0);
        let later = |secs| T0.saturating_add(Duration::from_secs(secs));
        assert_eq!(
            cache.get(&identifier("@Alice.Example.com"), later(299)),
            Some(&identity(ALICE))
        );
        assert_eq!(
            cache.get(&identifier("alice.example.com"), later(300)),
            None
        );
        assert_eq!(cache.get(&identifier("bob.example.com"), T0), None);
    }

    #[test]
    fn no_entry_outlives_ten_minutes() {
        let mut cache = IdentityCache::new(Duration::from_secs(3600), 10);
        cache.insert(&identifier(ALICE), identity(ALICE), T0);
        assert!(
            cache
                .get(
                    &identifier(ALICE),
                    T0.saturating_add(MAX_TTL)
                        .saturating_sub(Duration::from_secs(1))
                )
                .is_some()
        );
        assert!(
            cache
                .get(&identifier(ALICE), T0.saturating_add(MAX_TTL))
                .is_none()
        );
        assert!(MAX_TTL < Duration::from_secs(600));
    }

    #[test]
    fn a_full_cache_drops_expired_then_soonest_entries() {
        let mut cache = IdentityCache::new(Duration::from_secs(60), 2);
        cache.insert(&identifier("a.example.com"), identity(ALICE), T0);
        cache.insert(
            &identifier("b.example.com"),
            identity(ALICE),
            T0.saturating_add(Duration::from_secs(10)),
        );
        cache.insert(
            &identifier("c.example.com"),
            identity(ALICE),
            T0.saturating_add(Duration::from_secs(20)),
        );
        assert_eq!(cache.len(), 2);
        let now = T0.saturating_add(Duration::from_secs(20));
        assert!(cache.get(&identifier("a.example.com"), now).is_none());
        assert!(cache.get(&identifier("b.example.com"), now).is_some());
        assert!(cache.get(&identifier("c.example.com"), now).is_some());

        // Refreshing an entry that is there does not evict another.
        cache.insert(&identifier("c.example.com"), identity(ALICE), now);
        assert_eq!(cache.len(), 2);

        // Once b has expired it is the one to go.
        let much_later = T0.saturating_add(Duration::from_secs(75));
        cache.insert(&identifier("d.example.com"), identity(ALICE), much_later);
        assert!(
            cache
                .get(&identifier("c.example.com"), much_later)
                .is_some()
        );
        assert!(
            cache
                .get(&identifier("d.example.com"), much_later)
                .is_some()
        );
        assert_eq!(cache.len(), 2);
    }

    #[test]
    fn remove_and_zero_capacity() {
        let mut cache = IdentityCache::new(Duration::from_secs(60), 1);
        cache.insert(&identifier(ALICE), identity(ALICE), T0);
        cache.remove(&identifier(ALICE));
        assert!(cache.is_empty());
        let mut none = IdentityCache::new(Duration::from_secs(60), 0);
        none.insert(&identifier(ALICE), identity(ALICE), T0);
        assert!(none.is_empty());
    }
}
