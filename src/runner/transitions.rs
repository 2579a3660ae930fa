//! How long an endpoint's transitions (CONNECTING, DISCONNECTING) take, learned from the
//! settles already done against it, so the next settle's polls start when the transition is
//! likely over instead of at once: fewer requests against a throttled endpoint, no longer wait.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

/// The first pause when nothing is known yet, and the least pause.
const FLOOR: Duration = Duration::from_millis(1);
/// The longest pause between two polls.
const CAP: Duration = Duration::from_secs(5);

/// The pauses of one settle: the first from what the endpoint's transitions took before, then
/// doubling from a fraction of it, never over [`CAP`].
#[derive(Debug, Clone)]
pub struct Schedule {
    next: Duration,
    then: Duration,
}

impl Schedule {
    /// The schedule for a transition expected to last `learned` (None: unknown).
    pub fn new(learned: Option<Duration>) -> Schedule {
        match learned.filter(|d| !d.is_zero()) {
            // The last transition was still under way at `d` (a lower bound of its length):
            // polls before then would almost all see this one transitional too. After that,
            // poll often enough to notice the end soon.
            Some(d) => Schedule {
                next: d.clamp(FLOOR, CAP),
                then: (d / 4).clamp(FLOOR, CAP),
            },
            None => Schedule {
                next: FLOOR,
                then: FLOOR * 2,
            },
        }
    }

    /// The pause before the next poll.
    pub fn pause(&mut self) -> Duration {
        let now = self.next;
        self.next = self.then;
        self.then = (self.then * 2).min(CAP);
        now
    }
}

fn table() -> &'static Mutex<HashMap<String, Duration>> {
    static TABLE: OnceLock<Mutex<HashMap<String, Duration>>> = OnceLock::new();
    TABLE.get_or_init(Mutex::default)
}

/// What the transitions of the endpoint at `url` took so far (the latest observation).
pub fn learned(url: &str) -> Option<Duration> {
    table()
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(url)
        .copied()
}

/// Records that a transition of the endpoint at `url` was still under way `lasted` after its
/// settle began (the time of its last transitional answer: a lower bound of its length).
pub fn observe(url: &str, lasted: Duration) {
    table()
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(url.to_string(), lasted);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn with_nothing_learned_polls_start_at_once_and_double() {
        let mut s = Schedule::new(None);
        let pauses: Vec<u128> = (0..5).map(|_| s.pause().as_millis()).collect();
        assert_eq!(pauses, [1, 2, 4, 8, 16]);
    }

    #[test]
    fn a_learned_transition_delays_the_first_poll_and_stays_under_the_cap() {
        let mut s = Schedule::new(Some(Duration::from_millis(400)));
        let pauses: Vec<u128> = (0..4).map(|_| s.pause().as_millis()).collect();
        assert_eq!(pauses, [400, 100, 200, 400]);
        // Real KMS: a CloudHSM connect of 20 minutes polls every 5 s, no faster.
        let mut s = Schedule::new(Some(Duration::from_secs(1200)));
        assert_eq!(s.pause(), CAP);
        assert_eq!(s.pause(), CAP);
    }

    #[test]
    fn polls_until_a_300_ms_transition_ends_are_fewer_once_learned() {
        // Polls needed until a transition of `length` ms is over, with the schedule's pauses.
        let polls = |schedule: &mut Schedule, length: u128| {
            let (mut t, mut n) = (0u128, 1);
            while t < length {
                t += schedule.pause().as_millis();
                n += 1;
            }
            n
        };
        let first = polls(&mut Schedule::new(None), 300);
        let later = polls(&mut Schedule::new(Some(Duration::from_millis(280))), 300);
        assert_eq!(first, 10, "1 + 2 + ... + 256 ms: nine pauses, ten polls");
        assert!(later <= 3, "{later}");
    }

    #[test]
    fn observations_are_kept_per_endpoint() {
        observe("http://127.0.0.1:1/a", Duration::from_millis(70));
        observe("http://127.0.0.1:1/b", Duration::from_millis(9));
        assert_eq!(
            learned("http://127.0.0.1:1/a"),
            Some(Duration::from_millis(70))
        );
        assert_eq!(
            learned("http://127.0.0.1:1/b"),
            Some(Duration::from_millis(9))
        );
        assert_eq!(learned("http://127.0.0.1:1/c"), None);
    }
}
