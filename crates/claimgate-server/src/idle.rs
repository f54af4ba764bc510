//! Polling instead of sleeping for a moment after each request, so that the next one, if it
//! comes soon, finds the worker awake.
//!
//! A worker with nothing to do parks in `epoll_wait`, and its CPU halts. In a VM that halts idle
//! vCPUs at once (`haltpoll.guest_halt_poll_ns=0`, common on Firecracker and some clouds), each
//! halt is a VM exit and each wakeup an interrupt through the hypervisor, and a login that
//! arrives on a halted vCPU costs about 30% more CPU than one that finds it running
//! (benches/README.md, session 9). The spinner is a task that, while requests keep coming, yields
//! instead of letting the worker park: tokio then polls its I/O driver without blocking
//! (`epoll_wait` with a zero timeout) and runs whatever became ready, so the worker never halts
//! between requests that come less than `window` apart. After `window` without a request it
//! sleeps until the next one, and the worker parks as before.
//!
//! It only runs when the worker's queue is empty (tokio runs yielded tasks after the ready
//! ones), so under load it costs nothing; idle, it costs at most `window` of CPU per request.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Shared between the spinner and the connections that tell it of requests.
#[derive(Debug, Default)]
pub(crate) struct Spinner {
    requests: AtomicU64,
    sleeping: AtomicBool,
    wake: tokio::sync::Notify,
}

impl Spinner {
    /// A request came: keep spinning, or start again.
    pub(crate) fn request(&self) {
        self.requests.fetch_add(1, Ordering::SeqCst);
        if self.sleeping.load(Ordering::SeqCst) {
            self.wake.notify_one();
        }
    }

    /// Runs until aborted.
    pub(crate) async fn run(self: Arc<Self>, window: Duration) {
        loop {
            let mut seen = self.requests.load(Ordering::Relaxed);
            let mut since = Instant::now();
            loop {
                tokio::task::yield_now().await;
                let now_seen = self.requests.load(Ordering::Relaxed);
                if now_seen != seen {
                    (seen, since) = (now_seen, Instant::now());
                } else if since.elapsed() >= window {
                    break;
                }
            }
            // Sleep until the next request. `sleeping` is set before the last look at the
            // count, so that a request counted after that look finds it set and wakes us
            // (`notify_one` keeps a permit when no one waits yet).
            self.sleeping.store(true, Ordering::SeqCst);
            if self.requests.load(Ordering::SeqCst) == seen {
                self.wake.notified().await;
            }
            self.sleeping.store(false, Ordering::SeqCst);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn until(what: &str, condition: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !condition() {
            assert!(Instant::now() < deadline, "{what}");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn it_sleeps_after_the_window_and_each_request_wakes_it() {
        let spinner = Arc::new(Spinner::default());
        let task = tokio::spawn(spinner.clone().run(Duration::from_millis(2)));
        for round in 0..3 {
            until("asleep after the window", || spinner.sleeping.load(Ordering::SeqCst)).await;
            spinner.request();
            until("awake after a request", || !spinner.sleeping.load(Ordering::SeqCst)).await;
            // Other tasks (timers here, connections in the server) run while it spins.
            tokio::time::sleep(Duration::from_micros(100)).await;
            assert_eq!(spinner.requests.load(Ordering::SeqCst), round + 1);
        }
        task.abort();
    }
}
