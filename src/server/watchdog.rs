//! Per-connection idle watchdog: a connection with no request in flight for longer than the
//! header timeout is closed, whatever protocol it speaks and whatever bytes it trickles.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

/// What the watchdog sees of one connection: requests in flight and when it last became idle.
#[derive(Debug)]
pub struct Activity {
    in_flight: AtomicUsize,
    idle_since: Mutex<Instant>,
}

/// Marks one request in flight until dropped.
pub struct Busy(Arc<Activity>);

impl Drop for Busy {
    fn drop(&mut self) {
        if self.0.in_flight.fetch_sub(1, Ordering::SeqCst) == 1 {
            *self.0.idle_since.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
        }
    }
}

impl Activity {
    /// A connection that has just opened (idle: no request yet).
    pub fn new() -> Arc<Activity> {
        Arc::new(Activity {
            in_flight: AtomicUsize::new(0),
            idle_since: Mutex::new(Instant::now()),
        })
    }

    /// Marks a request in flight (its head has arrived) until the guard drops.
    pub fn busy(self: &Arc<Self>) -> Busy {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        Busy(self.clone())
    }

    /// Completes once the connection has had no request in flight for `limit` without a break.
    pub async fn idle_for(&self, limit: Duration) {
        loop {
            let deadline = if self.in_flight.load(Ordering::SeqCst) > 0 {
                Instant::now() + limit
            } else {
                *self.idle_since.lock().unwrap_or_else(|p| p.into_inner()) + limit
            };
            tokio::time::sleep_until(deadline).await;
            let idle_since = *self.idle_since.lock().unwrap_or_else(|p| p.into_inner());
            if self.in_flight.load(Ordering::SeqCst) == 0 && idle_since + limit <= Instant::now() {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Catches a watchdog that fires while a request is in flight, or never fires.
    #[tokio::test]
    async fn fires_only_after_a_full_idle_stretch_and_never_while_busy() {
        let limit = Duration::from_millis(100);
        let activity = Activity::new();
        let busy = activity.busy();
        let watched = tokio::spawn({
            let activity = activity.clone();
            async move { activity.idle_for(limit).await }
        });
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(
            !watched.is_finished(),
            "fired while a request was in flight"
        );
        let freed = Instant::now();
        drop(busy);
        tokio::time::timeout(Duration::from_secs(2), watched)
            .await
            .expect("fires once idle")
            .unwrap();
        assert!(freed.elapsed() >= limit);
    }
}
