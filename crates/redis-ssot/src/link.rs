//! One named connection that the manager owns, and the loop that keeps it connected.
//!
//! ## Behavior
//! - A [`Link`] is either up (holds a connection and its epoch) or down. Callers never wait
//!   for it: a down link answers [`Error::Unavailable`] at once.
//! - Its reconnect task connects with a connect timeout, names the connection
//!   (`CLIENT SETNAME ssot:<app>:<role>`), runs the role's `on_connect` hook (the subscriber
//!   resubscribes there), and only then marks the link up.
//! - Failed attempts back off exponentially with full jitter between `reconnect_min_delay`
//!   and `reconnect_max_delay`.
//! - The link goes down when a caller sees a connection-level error, when the connection
//!   reports its own disconnection, or when the health monitor says it hangs. A cluster
//!   link ignores one node's errors and disconnections (the cluster client reconnects that
//!   node, and the failure domain of its master judges it); it goes down only when no node
//!   answers at all. The exception is the subscriber: a node's disconnection takes it down,
//!   and it comes back as a fresh cluster connection with every channel subscribed again.
//! - Behind Sentinel, each connection attempt asks the Sentinels which node is master now;
//!   a lost connection or a `READONLY` reply (a demoted master) sends the link back there,
//!   so the link follows a failover.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwapOption;

use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{
    MultipleNodeRoutingInfo, ResponsePolicy, Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr,
};
use redis::{
    AsyncConnectionConfig, Cmd, IntoConnectionInfo, Pipeline, ProtocolVersion, PushInfo, PushKind,
    RedisFuture, Value,
};
use tokio::sync::{Notify, mpsc, watch};

use crate::backoff::{Backoff, Jitter};
use crate::config::{RedisConfig, TlsConfig, Topology};
use crate::error::{Error, Result};

/// A live connection: one server, or a cluster connection that routes by slot.
#[derive(Clone)]
pub(crate) enum Conn {
    Single(MultiplexedConnection),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Single(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Single(c) => c.req_packed_commands(cmd, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(cmd, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
}

impl Conn {
    /// Sends `cmd` to every node (cluster) or the one server.
    pub(crate) async fn on_all_nodes(&mut self, cmd: &Cmd) -> redis::RedisResult<Value> {
        match self {
            Conn::Single(c) => cmd.query_async(c).await,
            Conn::Cluster(c) => {
                c.route_command(
                    cmd.clone(),
                    RoutingInfo::MultiNode((
                        MultipleNodeRoutingInfo::AllNodes,
                        Some(ResponsePolicy::AllSucceeded),
                    )),
                )
                .await
            }
        }
    }

    /// Sends `cmd` to the node `host:port` of a cluster (any node when `None`), or to the
    /// one server.
    pub(crate) async fn on_node(
        &mut self,
        cmd: &Cmd,
        node: Option<&str>,
    ) -> redis::RedisResult<Value> {
        match self {
            Conn::Single(c) => cmd.query_async(c).await,
            Conn::Cluster(c) => {
                let route = match node.and_then(|n| n.rsplit_once(':')) {
                    Some((host, port)) => SingleNodeRoutingInfo::ByAddress {
                        host: host.to_owned(),
                        port: port.parse().unwrap_or_default(),
                    },
                    None => SingleNodeRoutingInfo::Random,
                };
                c.route_command(cmd.clone(), RoutingInfo::SingleNode(route))
                    .await
            }
        }
    }

    /// Sends `cmd` to the master of `slot` on a cluster (any node when `None`), or to the one
    /// server.
    pub(crate) async fn on_slot(
        &mut self,
        cmd: &Cmd,
        slot: Option<u16>,
    ) -> redis::RedisResult<Value> {
        match (self, slot) {
            (Conn::Cluster(c), Some(slot)) => {
                let route = Route::new(slot, SlotAddr::Master);
                c.route_command(
                    cmd.clone(),
                    RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(route)),
                )
                .await
            }
            (conn, _) => conn.on_node(cmd, None).await,
        }
    }

    pub(crate) async fn subscribe(&mut self, channels: &[String]) -> redis::RedisResult<()> {
        match self {
            Conn::Single(c) => c.subscribe(channels).await,
            Conn::Cluster(c) => c.subscribe(channels).await,
        }
    }

    /// `SSUBSCRIBE` on a cluster (to the master owning each channel's slot).
    pub(crate) async fn ssubscribe(&mut self, channels: &[String]) -> redis::RedisResult<()> {
        match self {
            Conn::Single(c) => c.subscribe(channels).await,
            Conn::Cluster(c) => c.ssubscribe(channels).await,
        }
    }

    pub(crate) async fn sunsubscribe(&mut self, channels: &[String]) -> redis::RedisResult<()> {
        match self {
            Conn::Single(c) => c.unsubscribe(channels).await,
            Conn::Cluster(c) => c.sunsubscribe(channels).await,
        }
    }

    pub(crate) async fn unsubscribe(&mut self, channels: &[String]) -> redis::RedisResult<()> {
        match self {
            Conn::Single(c) => c.unsubscribe(channels).await,
            Conn::Cluster(c) => c.unsubscribe(channels).await,
        }
    }
}

/// What a role does right after connecting, before the link counts as up.
pub(crate) type OnConnect =
    Arc<dyn Fn(Conn) -> Pin<Box<dyn Future<Output = Result<()>> + Send>> + Send + Sync>;

/// A named, self-healing connection.
pub(crate) struct Link {
    role: &'static str,
    name: String,
    config: RedisConfig,
    /// Budget of ordinary commands on this connection; `None` for blocking ones.
    response_timeout: Option<Duration>,
    /// The connection and its epoch. Read on every call, so a lock-free swap cell: a read
    /// takes no shared lock word that every task would contend on.
    current: ArcSwapOption<(u64, Conn)>,
    epoch: AtomicU64,
    reconnects: AtomicU64,
    /// Why the last connection attempt failed, while the link is down.
    connect_error: Mutex<Option<String>>,
    wake: Notify,
    up_tx: watch::Sender<bool>,
    /// Where pushes other than disconnections go (the subscriber's dispatcher).
    push_tx: Option<mpsc::UnboundedSender<PushInfo>>,
    on_connect: Option<OnConnect>,
}

impl Link {
    pub(crate) fn new(
        config: &RedisConfig,
        role: &'static str,
        response_timeout: Option<Duration>,
        push_tx: Option<mpsc::UnboundedSender<PushInfo>>,
        on_connect: Option<OnConnect>,
    ) -> Arc<Link> {
        let (up_tx, _) = watch::channel(false);
        Arc::new(Link {
            role,
            name: format!("ssot:{}:{}", config.app, role),
            config: config.clone(),
            response_timeout,
            current: ArcSwapOption::empty(),
            epoch: AtomicU64::new(0),
            reconnects: AtomicU64::new(0),
            connect_error: Mutex::new(None),
            wake: Notify::new(),
            up_tx,
            push_tx,
            on_connect,
        })
    }

    /// The budget the connection itself puts on each request, if any.
    pub(crate) fn response_timeout(&self) -> Option<Duration> {
        self.response_timeout
    }

    pub(crate) fn role(&self) -> &'static str {
        self.role
    }

    /// The connection name set with CLIENT SETNAME.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// The current connection and its epoch, or `Unavailable` at once when down.
    pub(crate) fn get(&self) -> Result<(u64, Conn)> {
        match &*self.current.load() {
            Some(current) => Ok(current.as_ref().clone()),
            None => Err(Error::Unavailable {
                retry_after: self.config.reconnect_min_delay,
                reason: "connection down",
            }),
        }
    }

    pub(crate) fn is_up(&self) -> bool {
        *self.up_tx.borrow()
    }

    pub(crate) fn watch_up(&self) -> watch::Receiver<bool> {
        self.up_tx.subscribe()
    }

    /// Why the last connection attempt failed, if the link is down after a failed attempt.
    pub(crate) fn connect_error(&self) -> Option<String> {
        self.connect_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Successful reconnects after the first connection.
    pub(crate) fn reconnects(&self) -> u64 {
        self.reconnects.load(Ordering::Relaxed)
    }

    /// Drops the connection of `epoch` (if still current) and wakes the reconnect task.
    pub(crate) fn mark_down(&self, epoch: u64, cause: &str) {
        let Some(seen) = self
            .current
            .load_full()
            .filter(|current| current.0 == epoch)
        else {
            return;
        };
        // Only the caller that swaps the connection of `epoch` out reports it down.
        let previous = self
            .current
            .compare_and_swap(&Some(Arc::clone(&seen)), None);
        if previous.as_ref().is_some_and(|p| Arc::ptr_eq(p, &seen)) {
            tracing::warn!(role = self.role, cause, "redis connection down");
            metrics::gauge!("ssot_redis_link_up", "role" => self.role).set(0.0);
            self.up_tx.send_replace(false);
            self.wake.notify_one();
        }
    }

    /// Classifies a command error: connection-level errors take the link down.
    /// On a Cluster, a connection error concerns one node, which the cluster client
    /// reconnects itself: the link stays up, so users of the other masters are not touched.
    pub(crate) fn observe_error(&self, epoch: u64, err: &redis::RedisError) {
        if self.config.is_cluster() {
            return;
        }
        // Behind Sentinel, a write refused as READONLY went to a demoted master (Sentinel
        // usually kills its clients, but a client of a partitioned one is not killed): ask
        // the Sentinels again.
        let sentinel = matches!(self.config.topology, Topology::Sentinel { .. });
        if sentinel && err.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::ReadOnly) {
            self.mark_down(epoch, "the node is no longer master");
            return;
        }
        if err.is_unrecoverable_error() || err.is_io_error() || err.is_connection_dropped() {
            self.mark_down(epoch, "connection error");
        }
    }

    /// Waits until the link is up, at most `budget`.
    pub(crate) async fn wait_up(&self, budget: Duration) -> bool {
        let mut rx = self.watch_up();
        tokio::time::timeout(budget, rx.wait_for(|up| *up))
            .await
            .is_ok()
    }

    /// Keeps the link connected until the task is aborted.
    pub(crate) async fn run(self: Arc<Self>) {
        let mut backoff = Backoff::new(
            self.config.reconnect_min_delay,
            self.config.reconnect_max_delay,
            Jitter::Full,
        );
        loop {
            if self.is_up() {
                self.wake.notified().await;
                continue;
            }
            let outcome = self.connect_once().await;
            *self.connect_error.lock().unwrap_or_else(|e| e.into_inner()) =
                outcome.as_ref().err().map(ToString::to_string);
            match outcome {
                Ok(()) => backoff.reset(),
                Err(err) => {
                    let delay = backoff.pause();
                    tracing::debug!(role = self.role, cause = %err, ?delay, "reconnect attempt failed");
                    tokio::time::sleep(delay).await;
                }
            }
        }
    }

    async fn connect_once(self: &Arc<Self>) -> Result<()> {
        let (disc_tx, disc_rx) = mpsc::unbounded_channel::<PushInfo>();
        let connect = open(&self.config, self.response_timeout, disc_tx);
        let mut conn = tokio::time::timeout(self.config.connect_timeout, connect)
            .await
            .map_err(|_| Error::Timeout {
                after: self.config.connect_timeout,
            })??;
        let setname = redis::cmd("CLIENT").arg("SETNAME").arg(&self.name).clone();
        tokio::time::timeout(self.config.connect_timeout, conn.on_all_nodes(&setname))
            .await
            .map_err(|_| Error::Timeout {
                after: self.config.connect_timeout,
            })??;
        let epoch = self.epoch.fetch_add(1, Ordering::Relaxed) + 1;
        // Watch pushes from the moment the connection exists, so a disconnection during the
        // hook is not missed.
        tokio::spawn(forward_pushes(Arc::downgrade(self), epoch, disc_rx));
        if let Some(hook) = &self.on_connect {
            tokio::time::timeout(self.config.connect_timeout, hook(conn.clone()))
                .await
                .map_err(|_| Error::Timeout {
                    after: self.config.connect_timeout,
                })
                .and_then(|r| r)?
        }
        self.current.store(Some(Arc::new((epoch, conn))));
        if epoch > 1 {
            self.reconnects.fetch_add(1, Ordering::Relaxed);
            metrics::counter!("ssot_redis_reconnects_total", "role" => self.role).increment(1);
            tracing::info!(role = self.role, "redis connection restored");
        }
        metrics::gauge!("ssot_redis_link_up", "role" => self.role).set(1.0);
        self.up_tx.send_replace(true);
        Ok(())
    }
}

/// Forwards pushes of one connection: a disconnection takes the link down, the rest go to the
/// role's consumer.
async fn forward_pushes(
    link: std::sync::Weak<Link>,
    epoch: u64,
    mut rx: mpsc::UnboundedReceiver<PushInfo>,
) {
    while let Some(push) = rx.recv().await {
        let Some(link) = link.upgrade() else { return };
        if push.kind == PushKind::Disconnection {
            // A cluster connection reports each node's disconnection and reconnects that node
            // itself: the command links stay up through it, so the users of the other masters
            // are not touched. The subscriber starts over instead, with a fresh cluster
            // connection that its hook subscribes again (a gap for every subscription): after
            // the cluster client repaired a node in place, its sharded subscriptions were
            // seen to stop delivering on every master, silently, for good (bench/chaos,
            // issue 12). A single server's disconnection takes any link down.
            if link.config.is_cluster() {
                let Some(tx) = &link.push_tx else { continue };
                let _ = tx.send(push);
            }
            link.mark_down(epoch, "disconnected");
            return;
        }
        if let Some(tx) = &link.push_tx {
            let _ = tx.send(push);
        }
    }
}

/// Opens one connection (RESP3, for pushes) to the configured topology.
async fn open(
    config: &RedisConfig,
    response_timeout: Option<Duration>,
    push_tx: mpsc::UnboundedSender<PushInfo>,
) -> Result<Conn> {
    match &config.topology {
        Topology::Single(url) => {
            let info = url.as_str().into_connection_info()?;
            let redis_info = info
                .redis_settings()
                .clone()
                .set_protocol(ProtocolVersion::RESP3);
            let info = info.set_redis_settings(redis_info);
            let client = match &config.tls {
                Some(tls) => redis::Client::build_with_tls(info, certificates(tls))?,
                None => redis::Client::open(info)?,
            };
            open_single(config, &client, response_timeout, push_tx).await
        }
        Topology::Sentinel { sentinels, master } => {
            let client = sentinel_master(config, sentinels, master).await?;
            open_single(config, &client, response_timeout, push_tx).await
        }
        Topology::Cluster(urls) => {
            let mut builder =
                redis::cluster::ClusterClientBuilder::new(urls.iter().map(String::as_str))
                    .use_protocol(ProtocolVersion::RESP3)
                    .connection_timeout(config.connect_timeout)
                    .retries(2)
                    .push_sender(push_tx);
            if let Some(t) = response_timeout {
                builder = builder.response_timeout(t);
            }
            if let Some(tls) = &config.tls {
                builder = builder.certs(certificates(tls));
            }
            Ok(Conn::Cluster(
                builder.build()?.get_async_connection().await?,
            ))
        }
    }
}

/// A multiplexed connection to the one server `client` points at.
async fn open_single(
    config: &RedisConfig,
    client: &redis::Client,
    response_timeout: Option<Duration>,
    push_tx: mpsc::UnboundedSender<PushInfo>,
) -> Result<Conn> {
    let conn_config = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(config.connect_timeout))
        .set_response_timeout(response_timeout)
        .set_push_sender(push_tx);
    Ok(Conn::Single(
        client
            .get_multiplexed_async_connection_with_config(&conn_config)
            .await?,
    ))
}

/// A client of the node the Sentinels name master of `master` now. redis-rs asks the
/// Sentinels (`SENTINEL MASTERS`), skips a master they see as down, and checks with `ROLE`
/// that the node is a master indeed; so during a failover this fails until the promotion,
/// and the reconnect loop asks again. Credentials of the first Sentinel URL are the master's;
/// TLS (`rediss+sentinel://`) covers Sentinels and master alike.
async fn sentinel_master(
    config: &RedisConfig,
    sentinels: &[String],
    master: &str,
) -> Result<redis::Client> {
    use redis::sentinel::{SentinelClientBuilder, SentinelServerType};
    let infos = sentinels
        .iter()
        .map(|url| url.as_str().into_connection_info())
        .collect::<redis::RedisResult<Vec<_>>>()?;
    let credentials = infos[0].redis_settings().clone();
    let mut builder = SentinelClientBuilder::new(
        infos.iter().map(|i| i.addr().clone()),
        master,
        SentinelServerType::Master,
    )?
    .set_client_to_redis_protocol(ProtocolVersion::RESP3);
    if let Some(username) = credentials.username() {
        builder = builder.set_client_to_redis_username(username);
    }
    if let Some(password) = credentials.password() {
        builder = builder.set_client_to_redis_password(password);
    }
    if let Some(tls) = &config.tls {
        builder = builder
            .set_client_to_redis_tls_mode(redis::TlsMode::Secure)
            .set_client_to_redis_certificates(certificates(tls))
            .set_client_to_sentinel_tls_mode(redis::TlsMode::Secure)
            .set_client_to_sentinel_certificates(certificates(tls));
    }
    Ok(builder.build()?.async_get_client().await?)
}

fn certificates(tls: &TlsConfig) -> redis::TlsCertificates {
    redis::TlsCertificates {
        client_tls: tls.client.as_ref().map(|c| redis::ClientTlsConfig {
            client_cert: c.cert_pem.clone(),
            client_key: c.key_pem.clone(),
        }),
        root_cert: tls.ca_pem.clone(),
    }
}
