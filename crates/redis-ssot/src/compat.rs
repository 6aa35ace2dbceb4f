//! Old entry points kept as aliases of [`crate::manager()`] while a codebase migrates.
//!
//! Each alias returns the same instance and logs one warning per process naming itself, so
//! the remaining call sites show up in the logs (and `ssot check` finds them statically).

use std::sync::Once;

use crate::manager::{RedisManager, manager};

fn warn_once(once: &Once, alias: &'static str) {
    once.call_once(|| {
        tracing::warn!(
            alias,
            replacement = "redis_ssot::manager()",
            "deprecated Redis manager alias used; migrate to the canonical manager"
        );
        metrics::counter!("ssot_deprecated_alias_used_total", "alias" => alias).increment(1);
    });
}

macro_rules! alias {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[deprecated(since = "0.1.0", note = "use redis_ssot::manager(); this alias returns the same instance")]
        pub fn $name() -> RedisManager {
            static ONCE: Once = Once::new();
            warn_once(&ONCE, stringify!($name));
            manager()
        }
    };
}

alias!(
    /// Former manager of the authentication module.
    auth_manager
);
alias!(
    /// Former manager of the cache module.
    cache_manager
);
alias!(
    /// Former general-purpose getter.
    get_redis_manager
);
