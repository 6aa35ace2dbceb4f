//! The stores' Lua scripts, one `.lua` file per script, named after what it does.
//!
//! [`lua!`](crate::stores::lua::lua) builds a script's source at compile time: the shared
//! `prelude.lua` (server-clock helpers `now_ms()` and `now_us()`), then the named files in
//! order. A store keeps the script in a `LazyLock<Script>`:
//!
//! ```ignore
//! static SET: LazyLock<Script> = LazyLock::new(|| Script::new(lua!("cache_set")));
//! ```
//!
//! Several files compose one script (`lua!("jobs_bury", "jobs_fail")`) when scripts share a
//! local function.

/// The source of a script: `prelude.lua` followed by each `<name>.lua` of this folder.
macro_rules! lua {
    ($($name:literal),+ $(,)?) => {
        concat!(
            include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/src/stores/lua/prelude.lua")),
            $(include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/src/stores/lua/", $name, ".lua")),)+
        )
    };
}

pub(crate) use lua;

#[cfg(test)]
mod tests {
    #[test]
    fn the_prelude_comes_first_then_the_parts_in_order() {
        let source: &str = lua!("lock_renew", "lock_release");
        let prelude = include_str!("prelude.lua");
        assert!(source.starts_with(prelude));
        let rest = &source[prelude.len()..];
        let renew = include_str!("lock_renew.lua");
        assert!(rest.starts_with(renew));
        assert_eq!(&rest[renew.len()..], include_str!("lock_release.lua"));
    }
}
