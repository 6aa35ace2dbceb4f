//! A TCP proxy between a client and Redis that can delay, hold and cut traffic.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

/// Chunks read but not yet written, per direction; beyond this the proxy stops reading
/// and TCP backpressure holds the rest in kernel buffers.
const QUEUED_CHUNKS: usize = 64;
const CHUNK_SIZE: usize = 16 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Pass,
    Delay(Duration),
    Blackhole,
}

#[derive(Debug, Clone, Copy)]
struct Control {
    mode: Mode,
    /// Bumped by `cut_all()`; a connection closes when it differs from its own.
    cut_epoch: u64,
}

/// A TCP proxy on `127.0.0.1:<ephemeral>` that forwards to one upstream address and
/// injects faults on command.
///
/// ## Behavior
/// - Runs on its own thread with its own current-thread tokio runtime, so a test that
///   pauses tokio time or blocks its runtime does not stall the proxy.
/// - `pass()` (default): forward both ways. `delay(d)`: every chunk, both directions, is
///   written `d` after it was read (latency, not a throughput cap).
/// - `blackhole()`: new connections are accepted but not connected upstream; existing
///   ones stop forwarding in both directions. Bytes are held, not dropped, and sockets stay
///   open: after `pass()` held traffic flows on in order, like a healed partition.
/// - `cut_all()`: closes every current connection (the client side with RST), keeps accepting.
/// - When the upstream refuses a connection, the client connection is closed.
/// - Drop stops the thread and closes every socket.
#[derive(Debug)]
pub struct FaultProxy {
    addr: SocketAddr,
    control: watch::Sender<Control>,
    connections: Arc<AtomicUsize>,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl FaultProxy {
    /// Starts a proxy in front of `upstream`, in pass mode.
    ///
    /// # Panics
    /// If it cannot bind a loopback port or start its thread.
    pub fn start(upstream: SocketAddr) -> FaultProxy {
        let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .and_then(|l| l.set_nonblocking(true).map(|()| l))
            .expect("ssot-testkit: proxy cannot bind 127.0.0.1:0");
        let addr = listener
            .local_addr()
            .expect("ssot-testkit: proxy has no local address");
        let (control, control_rx) = watch::channel(Control {
            mode: Mode::Pass,
            cut_epoch: 0,
        });
        let connections = Arc::new(AtomicUsize::new(0));
        let (shutdown, shutdown_rx) = oneshot::channel();
        let counter = connections.clone();
        let thread = std::thread::Builder::new()
            .name(format!("ssot-fault-proxy-{}", addr.port()))
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("ssot-testkit: proxy cannot build its runtime");
                runtime.block_on(async move {
                    let listener =
                        TcpListener::from_std(listener).expect("ssot-testkit: proxy listener");
                    tokio::select! {
                        () = accept_loop(listener, upstream, control_rx, counter) => {}
                        _ = shutdown_rx => {}
                    }
                });
                // Dropping the runtime cancels every connection task and closes its sockets.
            })
            .expect("ssot-testkit: cannot start the proxy thread");
        FaultProxy {
            addr,
            control,
            connections,
            shutdown: Some(shutdown),
            thread: Some(thread),
        }
    }

    /// The proxy's listening address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `redis://127.0.0.1:<proxy port>`.
    pub fn url(&self) -> String {
        format!("redis://{}", self.addr)
    }

    /// Forwards normally.
    pub fn pass(&self) {
        self.set_mode(Mode::Pass);
    }

    /// Delays every chunk in both directions by `d`.
    pub fn delay(&self, d: Duration) {
        self.set_mode(Mode::Delay(d));
    }

    /// Holds all traffic: accept, but forward nothing and close nothing.
    pub fn blackhole(&self) {
        self.set_mode(Mode::Blackhole);
    }

    /// Closes every current connection; new ones are accepted as usual.
    pub fn cut_all(&self) {
        self.control.send_modify(|c| c.cut_epoch += 1);
    }

    /// Client connections currently open through the proxy.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    fn set_mode(&self, mode: Mode) {
        self.control.send_modify(|c| c.mode = mode);
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Decrements the open-connection count however the connection task ends.
struct Open(Arc<AtomicUsize>);

impl Drop for Open {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn accept_loop(
    listener: TcpListener,
    upstream: SocketAddr,
    control: watch::Receiver<Control>,
    connections: Arc<AtomicUsize>,
) {
    loop {
        let client = match listener.accept().await {
            Ok((client, _)) => client,
            Err(_) => {
                // e.g. EMFILE: back off instead of spinning.
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        connections.fetch_add(1, Ordering::SeqCst);
        let open = Open(connections.clone());
        tokio::spawn(serve(client, upstream, control.clone(), open));
    }
}

async fn serve(
    client: TcpStream,
    upstream: SocketAddr,
    mut control: watch::Receiver<Control>,
    _open: Open,
) {
    let _ = client.set_nodelay(true);
    let epoch = control.borrow().cut_epoch;
    let (mut client_rd, mut client_wr) = client.into_split();
    let forward = {
        let control = control.clone();
        let (client_rd, client_wr) = (&mut client_rd, &mut client_wr);
        async move {
            let mut held = control.clone();
            if held.wait_for(|c| c.mode != Mode::Blackhole).await.is_err() {
                return;
            }
            let Ok(server) = TcpStream::connect(upstream).await else {
                return;
            };
            let _ = server.set_nodelay(true);
            let (mut server_rd, mut server_wr) = server.into_split();
            tokio::select! {
                () = pump(client_rd, &mut server_wr, &control) => {}
                () = pump(&mut server_rd, client_wr, &control) => {}
            }
        }
    };
    let cut = tokio::select! {
        () = forward => false,
        _ = control.wait_for(|c| c.cut_epoch != epoch) => true,
    };
    if cut {
        // RST rather than FIN: the client sees an abrupt reset, like a peer that died.
        let _ = client_wr.as_ref().set_zero_linger();
    }
}

/// Forwards one direction until either side closes, applying the current mode per chunk.
async fn pump(rd: &mut OwnedReadHalf, wr: &mut OwnedWriteHalf, control: &watch::Receiver<Control>) {
    let (tx, mut rx) = mpsc::channel::<(Instant, Vec<u8>)>(QUEUED_CHUNKS);
    let read_side = {
        let control = control.clone();
        async move {
            loop {
                let mut buf = vec![0; CHUNK_SIZE];
                let n = match rd.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                buf.truncate(n);
                let delay = match control.borrow().mode {
                    Mode::Delay(d) => d,
                    Mode::Pass | Mode::Blackhole => Duration::ZERO,
                };
                if tx.send((Instant::now() + delay, buf)).await.is_err() {
                    break;
                }
            }
        }
    };
    let write_side = {
        let mut control = control.clone();
        async move {
            while let Some((due, buf)) = rx.recv().await {
                if control
                    .wait_for(|c| c.mode != Mode::Blackhole)
                    .await
                    .is_err()
                {
                    return;
                }
                tokio::time::sleep_until(due).await;
                if wr.write_all(&buf).await.is_err() {
                    return;
                }
            }
        }
    };
    tokio::join!(read_side, write_side);
}
