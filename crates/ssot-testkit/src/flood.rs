//! The event stream of the replay flood in issue 12 (finding 1), shared by the library's
//! and the gateway's tests of it: many small events and, 1 in 6, an 8 KB one, like the
//! `tool_executing` frames of the attack review.

use std::future::Future;
use std::time::Duration;

/// Size of the large events.
pub const LARGE: usize = 8 * 1024;

/// Appends in flight while seeding.
const IN_FLIGHT: usize = 16;
/// Tries of one append before seeding gives up.
const TRIES: usize = 5;

/// The JSON data of event `n`: `{"n":n,"text":...}`, the text 8 KB when `n` is a multiple
/// of 6, else a few bytes.
pub fn event_data(n: usize) -> String {
    let text = if n.is_multiple_of(6) {
        "x".repeat(LARGE)
    } else {
        format!("step {n}")
    };
    format!("{{\"n\":{n},\"text\":\"{text}\"}}")
}

/// Appends events `0..total` with [`IN_FLIGHT`] appends in flight: `append(n)` appends
/// event `n` (its data from [`event_data`]). An `Err` is a transient failure (on a loaded
/// machine a short budget can run out) and is tried again, up to 5 times 100 ms apart; the
/// closure panics itself on any other.
pub async fn seed<F, Fut>(total: usize, append: F)
where
    F: Fn(usize) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = Result<(), String>> + Send,
{
    let mut tasks = Vec::new();
    for task in 0..IN_FLIGHT {
        let append = append.clone();
        tasks.push(tokio::spawn(async move {
            for n in (task..total).step_by(IN_FLIGHT) {
                let mut tries = 0;
                while let Err(err) = append(n).await {
                    tries += 1;
                    assert!(tries < TRIES, "seeding event {n}: {err}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }));
    }
    for task in tasks {
        task.await.expect("a seeding task panicked");
    }
}
