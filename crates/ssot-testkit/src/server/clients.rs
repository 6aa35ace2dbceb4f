//! `CLIENT LIST`, read over the kit's own RESP connection and parsed.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use crate::resp::{Connection, Reply};

/// A connection that reads `CLIENT LIST`, made by
/// [`RedisServer::client_lister`](super::RedisServer::client_lister).
pub struct ClientLister {
    addr: SocketAddr,
    conn: Connection,
    own_id: u64,
}

impl ClientLister {
    /// Opens the connection and learns its own id, so [`list`](Self::list) can leave it out.
    ///
    /// # Panics
    /// If the server does not answer within 5 s.
    pub(super) fn open(addr: SocketAddr) -> ClientLister {
        let mut conn = Connection::open(addr, Duration::from_secs(5))
            .unwrap_or_else(|e| panic!("ssot-testkit: CLIENT LIST on {addr}: {e}"));
        let own_id = match conn.command(&["CLIENT", "ID"]) {
            Ok(Reply::Integer(id)) => id as u64,
            other => panic!("ssot-testkit: CLIENT ID on {addr}: {other:?}"),
        };
        ClientLister { addr, conn, own_id }
    }

    /// `CLIENT LIST`, parsed, without this lister's own connection.
    ///
    /// # Panics
    /// If the server does not answer within 5 s.
    pub fn list(&mut self) -> Vec<ClientInfo> {
        let addr = self.addr;
        let list = self
            .conn
            .command(&["CLIENT", "LIST"])
            .unwrap_or_else(|e| panic!("ssot-testkit: CLIENT LIST on {addr}: {e}"));
        let text = list
            .as_text()
            .unwrap_or_else(|| panic!("ssot-testkit: CLIENT LIST on {addr}: {list:?}"));
        text.lines()
            .map(ClientInfo::parse)
            .filter(|c| c.id != self.own_id)
            .collect()
    }
}

/// One line of `CLIENT LIST`.
///
/// The common fields are typed; every field, including those, is in `fields`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientInfo {
    /// `id`: unique connection id.
    pub id: u64,
    /// `addr`: the client's `ip:port`.
    pub addr: String,
    /// `name`: set by `CLIENT SETNAME`, empty when unset.
    pub name: String,
    /// `age`: seconds since the connection was made.
    pub age: u64,
    /// `idle`: seconds since its last command.
    pub idle: u64,
    /// `flags`: e.g. `N` (normal), `P` (pub/sub), `b` (blocked), `M`/`S` (master/replica).
    pub flags: String,
    /// `db`: selected database.
    pub db: u32,
    /// `sub`: channel subscriptions.
    pub sub: u64,
    /// `psub`: pattern subscriptions.
    pub psub: u64,
    /// `cmd`: the last command run, e.g. `client|setname`.
    pub cmd: String,
    /// Every `key=value` pair of the line.
    pub fields: HashMap<String, String>,
}

impl ClientInfo {
    fn parse(line: &str) -> ClientInfo {
        let fields: HashMap<String, String> = line
            .split_whitespace()
            .filter_map(|pair| pair.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        let text = |key: &str| fields.get(key).cloned().unwrap_or_default();
        let number = |key: &str| {
            fields
                .get(key)
                .and_then(|v| v.parse().ok())
                .unwrap_or_default()
        };
        ClientInfo {
            id: number("id"),
            addr: text("addr"),
            name: text("name"),
            age: number("age"),
            idle: number("idle"),
            flags: text("flags"),
            db: number("db") as u32,
            sub: number("sub"),
            psub: number("psub"),
            cmd: text("cmd"),
            fields,
        }
    }
}
