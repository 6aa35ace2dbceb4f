//! The in-process cache of verified tokens.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::claims::Claims;

/// Verified tokens, bounded in number and age: two generations of maps; a hit in the older
/// one moves the entry to the newer one, and when the newer one is half full it replaces
/// the older one.
pub(super) struct VerifiedCache {
    half: usize,
    ttl: Duration,
    young: HashMap<String, Cached>,
    old: HashMap<String, Cached>,
}

struct Cached {
    claims: Claims,
    at: Instant,
}

impl VerifiedCache {
    pub(super) fn new(size: usize, ttl: Duration) -> VerifiedCache {
        VerifiedCache {
            half: size.div_ceil(2),
            ttl,
            young: HashMap::new(),
            old: HashMap::new(),
        }
    }

    pub(super) fn get(&mut self, token: &str, now: u64) -> Option<Claims> {
        let fresh = |c: &Cached| c.at.elapsed() < self.ttl && c.claims.exp >= now;
        if let Some(cached) = self.young.get(token) {
            if fresh(cached) {
                return Some(cached.claims.clone());
            }
            self.young.remove(token);
            return None;
        }
        let cached = self.old.remove(token)?;
        if !fresh(&cached) {
            return None;
        }
        let claims = cached.claims.clone();
        self.put(token.to_owned(), cached);
        Some(claims)
    }

    pub(super) fn insert(&mut self, token: &str, claims: Claims) {
        self.put(
            token.to_owned(),
            Cached {
                claims,
                at: Instant::now(),
            },
        );
    }

    fn put(&mut self, token: String, cached: Cached) {
        if self.half == 0 {
            return;
        }
        if self.young.len() >= self.half {
            self.old = std::mem::take(&mut self.young);
        }
        self.young.insert(token, cached);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::UserId;
    use crate::stores::tokens::unix_now;

    fn claims(n: u64) -> Claims {
        Claims {
            sub: UserId::new(&format!("u{n}")).unwrap(),
            exp: unix_now() + 600,
            nbf: None,
            iat: None,
            jti: None,
            aud: Vec::new(),
            iss: None,
        }
    }

    #[test]
    fn verified_cache_is_bounded_in_size() {
        let mut cache = VerifiedCache::new(100, Duration::from_secs(60));
        for n in 0..1_000 {
            cache.insert(&format!("token-{n}"), claims(n));
            assert!(cache.young.len() + cache.old.len() <= 100);
        }
        let now = unix_now();
        // The newest half is kept; the oldest entries are gone.
        assert!(cache.get("token-999", now).is_some());
        assert!(cache.get("token-0", now).is_none());
        // A hit in the older generation survives the next turnover.
        let kept = (900..1_000)
            .map(|n| format!("token-{n}"))
            .find(|t| cache.old.contains_key(t))
            .expect("an entry in the older generation");
        assert!(cache.get(&kept, now).is_some());
        for n in 1_000..1_049 {
            cache.insert(&format!("token-{n}"), claims(n));
        }
        assert!(cache.get(&kept, now).is_some());
    }

    #[test]
    fn verified_cache_entries_expire_by_age_and_by_exp() {
        let mut cache = VerifiedCache::new(10, Duration::from_millis(30));
        cache.insert("young", claims(1));
        let now = unix_now();
        assert!(cache.get("young", now).is_some());
        std::thread::sleep(Duration::from_millis(40));
        assert!(cache.get("young", now).is_none(), "kept past the cache ttl");

        let mut cache = VerifiedCache::new(10, Duration::from_secs(60));
        let mut expiring = claims(2);
        expiring.exp = now + 1;
        cache.insert("expiring", expiring);
        assert!(cache.get("expiring", now).is_some());
        assert!(
            cache.get("expiring", now + 2).is_none(),
            "kept past the token's exp"
        );
    }

    #[test]
    fn a_zero_sized_cache_keeps_nothing() {
        let mut cache = VerifiedCache::new(0, Duration::from_secs(60));
        cache.insert("t", claims(1));
        assert!(cache.get("t", unix_now()).is_none());
    }
}
