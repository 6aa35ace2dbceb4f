//! Typed stores built on the manager. Each file owns one key family (see [`crate::keys`]);
//! none opens a connection of its own. Their Lua scripts live in `lua/`, one `.lua` file each,
//! after a shared prelude (see `lua::lua!`).

pub mod agent_state;
pub mod cache;
pub mod chat;
pub mod events;
pub mod jobs;
pub mod lock;
mod lua;
pub mod presence;
pub mod rate_limit;
pub mod sessions;
pub mod tokens;
