//! Tests of the test kit itself, against real redis-server processes.

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ssot_testkit::{FaultProxy, RedisCluster, RedisServer, ping};

const SHORT: Duration = Duration::from_millis(300);

/// Set in a re-executed copy of this binary to make a helper test do its part.
const CHILD_ROLE: &str = "SSOT_TESTKIT_CHILD_ROLE";

fn child_role() -> Option<String> {
    std::env::var(CHILD_ROLE).ok()
}

/// Re-runs this test binary for one helper test with `role` set.
fn self_exec(test: &str, role: &str) -> Command {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["--exact", test, "--nocapture", "--test-threads", "1"])
        .env(CHILD_ROLE, role);
    cmd
}

fn process_gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        // A zombie waiting for a reaper is dead too.
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
    }
}

#[test]
fn start_answers_ping_and_cli() {
    let server = RedisServer::start();
    assert_eq!(ping(server.addr(), SHORT).unwrap(), "+PONG");
    assert_eq!(server.url(), format!("redis://127.0.0.1:{}", server.port()));
    assert_eq!(server.cli(&["SET", "k", "v"]), "OK");
    assert_eq!(server.cli(&["GET", "k"]), "v");
    assert_eq!(
        server.cli(&["CONFIG", "GET", "appendonly"]),
        "appendonly\nno"
    );
    assert!(server.try_cli(&["NOSUCHCOMMAND"]).is_err());
    assert!(server.dir().join("redis.log").exists());
}

#[test]
fn builder_passes_args() {
    let server = RedisServer::builder().arg("--maxmemory", "10mb").start();
    assert_eq!(
        server.cli(&["CONFIG", "GET", "maxmemory"]),
        "maxmemory\n10485760"
    );
}

#[test]
fn kill_refuses_connections_and_is_idempotent() {
    let mut server = RedisServer::start();
    let pid = server.pid();
    server.kill();
    server.kill();
    assert!(!server.is_running());
    assert!(process_gone(pid));
    let err = ping(server.addr(), SHORT).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionRefused);
}

#[test]
fn pause_times_out_and_resume_answers() {
    let mut server = RedisServer::start();
    server.pause();
    assert!(server.is_running());
    assert!(
        ping(server.addr(), SHORT).is_err(),
        "a paused server must not answer"
    );
    server.resume();
    assert_eq!(
        ping(server.addr(), Duration::from_secs(2)).unwrap(),
        "+PONG"
    );
}

#[test]
fn restart_keeps_port_and_aof_data() {
    let mut server = RedisServer::builder().aof(true).start();
    assert_eq!(
        server.cli(&["CONFIG", "GET", "appendfsync"]),
        "appendfsync\nalways"
    );
    let (port, old_pid) = (server.port(), server.pid());
    server.cli(&["SET", "durable", "yes"]);
    server.kill();
    server.restart();
    assert_eq!(server.port(), port);
    assert_ne!(server.pid(), old_pid);
    assert_eq!(server.cli(&["GET", "durable"]), "yes");
    // Restarting a live (even paused) server kills it first.
    server.pause();
    server.restart();
    assert_eq!(server.cli(&["GET", "durable"]), "yes");
}

#[test]
fn client_list_parses_names() {
    let server = RedisServer::start();
    let mut raw = TcpStream::connect(server.addr()).unwrap();
    raw.write_all(b"*3\r\n$6\r\nCLIENT\r\n$7\r\nSETNAME\r\n$13\r\nssot:test:cmd\r\n")
        .unwrap();
    let mut ok = [0u8; 5];
    raw.read_exact(&mut ok).unwrap();
    assert_eq!(&ok, b"+OK\r\n");

    let clients = server.client_list();
    assert_eq!(
        clients.len(),
        1,
        "only the raw client, not the kit's own: {clients:?}"
    );
    let me = &clients[0];
    assert_eq!(me.name, "ssot:test:cmd");
    assert_eq!(me.cmd, "client|setname");
    assert_eq!(me.addr, raw.local_addr().unwrap().to_string());
    assert!(me.flags.contains('N'));
    assert!(me.id > 0);
    assert_eq!(me.fields["name"], "ssot:test:cmd");
}

#[test]
fn server_outlives_the_thread_that_started_and_restarted_it() {
    let mut server = std::thread::spawn(RedisServer::start).join().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert!(server.is_running());
    assert_eq!(ping(server.addr(), SHORT).unwrap(), "+PONG");

    let server_ref = &mut server;
    std::thread::scope(|s| {
        s.spawn(|| server_ref.restart());
    });
    std::thread::sleep(Duration::from_millis(300));
    assert!(server.is_running());
    assert_eq!(ping(server.addr(), SHORT).unwrap(), "+PONG");
}

#[test]
fn sigkilled_test_process_leaves_no_server() {
    if child_role().as_deref() == Some("hold-server") {
        let server = RedisServer::start();
        println!("PID={}", server.pid());
        std::io::stdout().flush().unwrap();
        std::thread::sleep(Duration::from_secs(60));
        return;
    }
    if child_role().is_some() {
        return;
    }
    let mut child = self_exec("sigkilled_test_process_leaves_no_server", "hold-server")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let pid: u32 = lines
        .by_ref()
        .map_while(Result::ok)
        // libtest prints "test <name> ... " on the same line.
        .find_map(|l| l.split_once("PID=").map(|(_, p)| p.trim().parse().unwrap()))
        .expect("child printed no PID");
    assert!(!process_gone(pid));
    child.kill().unwrap(); // SIGKILL: no Drop runs in the child
    child.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while !process_gone(pid) {
        assert!(
            Instant::now() < deadline,
            "redis-server {pid} outlived its SIGKILLed test process"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn panicking_test_leaves_no_server() {
    let mut pid = 0;
    let unwound = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let server = RedisServer::start();
        pid = server.pid();
        panic!("on purpose");
    }));
    assert!(unwound.is_err());
    assert!(
        pid != 0 && process_gone(pid),
        "redis-server {pid} outlived a panicking test"
    );
}

#[test]
fn missing_redis_server_fails_fast_with_the_fix() {
    if child_role().as_deref() == Some("no-path") {
        RedisServer::start();
        return;
    }
    if child_role().is_some() {
        return;
    }
    let out = self_exec("missing_redis_server_fails_fast_with_the_fix", "no-path")
        .env("PATH", "/nonexistent")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(all.contains("apt-get install -y redis-server"), "{all}");
}

/// A raw client connection that sends PINGs and reads replies with a timeout.
struct RawClient(BufReader<TcpStream>);

impl RawClient {
    fn connect(addr: std::net::SocketAddr) -> RawClient {
        let stream = TcpStream::connect(addr).unwrap();
        stream.set_nodelay(true).unwrap();
        RawClient(BufReader::new(stream))
    }

    fn send_ping(&mut self) {
        self.0.get_mut().write_all(b"*1\r\n$4\r\nPING\r\n").unwrap();
    }

    fn read_line(&mut self, timeout: Duration) -> std::io::Result<String> {
        self.0.get_mut().set_read_timeout(Some(timeout)).unwrap();
        let mut line = String::new();
        match self.0.read_line(&mut line)? {
            0 => Err(ErrorKind::UnexpectedEof.into()),
            _ => Ok(line.trim_end().to_owned()),
        }
    }
}

fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn proxy_passes_and_counts_connections() {
    let server = RedisServer::start();
    let proxy = FaultProxy::start(server.addr());
    assert_eq!(
        proxy.url(),
        format!("redis://127.0.0.1:{}", proxy.addr().port())
    );
    assert_eq!(ping(proxy.addr(), SHORT).unwrap(), "+PONG");
    let mut a = RawClient::connect(proxy.addr());
    let mut b = RawClient::connect(proxy.addr());
    a.send_ping();
    b.send_ping();
    assert_eq!(a.read_line(SHORT).unwrap(), "+PONG");
    assert_eq!(b.read_line(SHORT).unwrap(), "+PONG");
    wait_until("2 connections", || proxy.connections() == 2);
    assert_eq!(server.client_list().len(), 2);
    drop(a);
    wait_until("1 connection", || proxy.connections() == 1);
}

#[test]
fn proxy_delay_adds_latency_both_ways() {
    let server = RedisServer::start();
    let proxy = FaultProxy::start(server.addr());
    let mut client = RawClient::connect(proxy.addr());
    proxy.delay(Duration::from_millis(150));
    let started = Instant::now();
    client.send_ping();
    assert_eq!(client.read_line(Duration::from_secs(2)).unwrap(), "+PONG");
    let rtt = started.elapsed();
    assert!(
        rtt >= Duration::from_millis(300) && rtt < Duration::from_millis(1000),
        "rtt {rtt:?}"
    );
    proxy.pass();
    let started = Instant::now();
    client.send_ping();
    assert_eq!(client.read_line(SHORT).unwrap(), "+PONG");
    assert!(started.elapsed() < Duration::from_millis(100));
}

#[test]
fn proxy_blackhole_holds_traffic_until_pass() {
    let server = RedisServer::start();
    let proxy = FaultProxy::start(server.addr());
    let mut existing = RawClient::connect(proxy.addr());
    existing.send_ping();
    assert_eq!(existing.read_line(SHORT).unwrap(), "+PONG");

    proxy.blackhole();
    existing.send_ping();
    let err = existing.read_line(SHORT).unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
        "{err:?}"
    );
    let mut fresh = RawClient::connect(proxy.addr()); // accepted, then held
    fresh.send_ping();
    assert!(fresh.read_line(SHORT).is_err());
    assert_eq!(proxy.connections(), 2);
    assert_eq!(
        server.client_list().len(),
        1,
        "held connections are not connected upstream"
    );

    proxy.pass();
    assert_eq!(existing.read_line(Duration::from_secs(2)).unwrap(), "+PONG");
    assert_eq!(fresh.read_line(Duration::from_secs(2)).unwrap(), "+PONG");
}

#[test]
fn proxy_cut_all_closes_connections_and_keeps_accepting() {
    let server = RedisServer::start();
    let proxy = FaultProxy::start(server.addr());
    let mut client = RawClient::connect(proxy.addr());
    client.send_ping();
    assert_eq!(client.read_line(SHORT).unwrap(), "+PONG");
    proxy.cut_all();
    let err = client.read_line(Duration::from_secs(2)).unwrap_err();
    assert!(
        matches!(
            err.kind(),
            ErrorKind::ConnectionReset | ErrorKind::UnexpectedEof
        ),
        "{err:?}"
    );
    wait_until("no connections", || proxy.connections() == 0);
    wait_until("redis saw the close", || server.client_list().is_empty());
    assert_eq!(ping(proxy.addr(), SHORT).unwrap(), "+PONG");
}

#[test]
fn proxy_closes_everything_on_drop() {
    let server = RedisServer::start();
    let proxy = FaultProxy::start(server.addr());
    let addr = proxy.addr();
    let mut client = RawClient::connect(addr);
    client.send_ping();
    assert_eq!(client.read_line(SHORT).unwrap(), "+PONG");
    drop(proxy);
    assert!(client.read_line(Duration::from_secs(2)).is_err());
    assert_eq!(
        ping(addr, SHORT).unwrap_err().kind(),
        ErrorKind::ConnectionRefused
    );
}

/// The proxy has its own runtime: a test runtime with paused time does not stop it.
#[tokio::test(start_paused = true)]
async fn proxy_runs_while_test_time_is_paused() {
    let server = RedisServer::start();
    let proxy = FaultProxy::start(server.addr());
    proxy.delay(Duration::from_millis(50));
    let started = Instant::now();
    assert_eq!(ping(proxy.addr(), Duration::from_secs(2)).unwrap(), "+PONG");
    assert!(started.elapsed() >= Duration::from_millis(100));
}

fn cluster_info(node: &RedisServer) -> String {
    node.cli(&["CLUSTER", "INFO"])
}

#[test]
fn cluster_of_three_masters_is_ok_everywhere_and_survives_a_node_restart() {
    let mut cluster = RedisCluster::start();
    assert_eq!(cluster.nodes().len(), 3);
    let ports: Vec<String> = cluster
        .nodes()
        .iter()
        .map(|n| format!("127.0.0.1:{}", n.port()))
        .collect();
    assert_eq!(
        cluster.cluster_url(),
        format!("redis+cluster://{}", ports.join(","))
    );
    assert_eq!(cluster.urls()[0], cluster.nodes()[0].url());
    for node in cluster.nodes() {
        assert!(node.port() < 55536, "bus port must fit");
        let info = cluster_info(node);
        assert!(info.contains("cluster_state:ok"), "{info}");
        assert!(info.contains("cluster_slots_assigned:16384"), "{info}");
    }
    // A key lands on exactly one master; the others redirect.
    let answers: Vec<Result<String, String>> = cluster
        .nodes()
        .iter()
        .map(|n| n.try_cli(&["SET", "k", "v"]))
        .collect();
    assert_eq!(
        answers.iter().filter(|a| a.as_deref() == Ok("OK")).count(),
        1,
        "{answers:?}"
    );

    cluster.node_mut(1).restart();
    cluster.wait_ready();
    assert!(cluster_info(&cluster.nodes()[1]).contains("cluster_state:ok"));
}

#[test]
fn cluster_with_replicas() {
    let cluster = RedisCluster::with(3, 1);
    assert_eq!(cluster.nodes().len(), 6);
    let nodes = cluster.nodes()[0].cli(&["CLUSTER", "NODES"]);
    assert_eq!(
        nodes.lines().filter(|l| l.contains("slave")).count(),
        3,
        "{nodes}"
    );
    for node in cluster.nodes() {
        assert!(cluster_info(node).contains("cluster_state:ok"));
    }
}
