//! The one long-lived thread that forks every `redis-server`.
//!
//! `setpriv --pdeathsig KILL` makes the kernel kill a child when the *thread* that
//! forked it exits, not when the process does. Tests start servers from tokio
//! workers, `spawn_blocking` threads and short-lived helper threads; if any of those
//! forked the child, the server would die with that thread. So every spawn goes
//! through this thread, which lives until the process ends.

use std::io;
use std::process::{Child, Command};
use std::sync::mpsc::{Sender, channel};
use std::sync::{Mutex, OnceLock};

struct SpawnRequest {
    command: Command,
    reply: Sender<io::Result<Child>>,
}

static SPAWNER: OnceLock<Mutex<Sender<SpawnRequest>>> = OnceLock::new();

fn spawner() -> &'static Mutex<Sender<SpawnRequest>> {
    SPAWNER.get_or_init(|| {
        let (tx, rx) = channel::<SpawnRequest>();
        std::thread::Builder::new()
            .name("ssot-testkit-spawner".into())
            .spawn(move || {
                // `rx` lives in a static sender's pair, so this loop only ends with the process.
                for mut request in rx {
                    let _ = request.reply.send(request.command.spawn());
                }
            })
            .expect("ssot-testkit: cannot start the spawner thread");
        Mutex::new(tx)
    })
}

/// Spawns `command` on the spawner thread and returns the child.
pub(crate) fn spawn(command: Command) -> io::Result<Child> {
    let (reply, answer) = channel();
    spawner()
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .send(SpawnRequest { command, reply })
        .expect("ssot-testkit: the spawner thread is gone");
    answer
        .recv()
        .expect("ssot-testkit: the spawner thread dropped a request")
}
