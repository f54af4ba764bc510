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
//!
//! It needs a runtime of one worker. With several, the worker that polls is often not the one
//! holding the I/O driver (its zero-timeout poll then checks nothing while another worker
//! sleeps in `epoll_wait`), and each yield, made by a worker that found nothing to do, wakes a
//! sleeping worker to look for work: CPU spent on every core for nothing. `claimgate serve`
//! runs one worker when `limits.idle_spin` is set; a server embedded in a runtime of several
//! workers does not spin, and says so in its log.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Whether the current runtime has one worker, the only kind the spinner helps; logs why not.
pub(crate) fn one_worker() -> bool {
    let workers = tokio::runtime::Handle::current().metrics().num_workers();
    if workers != 1 {
        tracing::warn!(workers, "limits.idle_spin is ignored: it needs a runtime of one worker thread");
    }
    workers == 1
}

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
        // A window long against the 1 ms the checks take, so that a check cannot miss it awake.
        let task = tokio::spawn(spinner.clone().run(Duration::from_millis(200)));
        for _ in 0..3 {
            until("asleep after the window", || spinner.sleeping.load(Ordering::SeqCst)).await;
            let asleep_at = Instant::now();
            spinner.request();
            until("awake after a request", || !spinner.sleeping.load(Ordering::SeqCst)).await;
            assert!(asleep_at.elapsed() < Duration::from_millis(200), "woken promptly by the request");
            // While it spins, other tasks (timers here, connections in the server) still run.
            let started = Instant::now();
            tokio::time::sleep(Duration::from_millis(2)).await;
            assert!(started.elapsed() < Duration::from_millis(150));
        }
        task.abort();
    }
}
