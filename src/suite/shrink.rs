//! One shrink's budget and memory: candidates are judged through [`Candidates`], which answers a
//! candidate already tried from its cache (nothing is sent again) and refuses to send once the
//! shrink's request or time budget is spent, saying which budget stopped it.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::generate::Step;
use crate::generate::minimize::Tried;

/// The time a shrink may take against the embedded emulator when `--shrink-time` is not given:
/// the first deviation of a check...
pub const EMBEDDED_TIME_FIRST: Duration = Duration::from_secs(60);
/// ... and each further one.
pub const EMBEDDED_TIME_MORE: Duration = Duration::from_secs(15);
/// Requests one shrink may send against a remote endpoint when `--shrink-requests` is not given.
pub const REMOTE_REQUESTS: u64 = 300;
/// Time one shrink may take against a remote endpoint when `--shrink-time` is not given.
pub const REMOTE_TIME: Duration = Duration::from_secs(20);

/// What one shrink may spend (None: no limit of that kind; the try caps hold anyway).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ShrinkBudget {
    /// Requests it may send (a candidate is sent only while fewer have been sent).
    pub requests: Option<u64>,
    /// Time it may take (None: [`EMBEDDED_TIME_FIRST`] or [`EMBEDDED_TIME_MORE`]).
    pub time: Option<Duration>,
}

impl ShrinkBudget {
    /// The defaults: against the embedded emulator no request limit and 60 s / 15 s; against a
    /// remote endpoint [`REMOTE_REQUESTS`] and [`REMOTE_TIME`]. Given flags win on both.
    pub fn resolve(requests: Option<u64>, time: Option<Duration>, embedded: bool) -> Self {
        if embedded {
            ShrinkBudget { requests, time }
        } else {
            ShrinkBudget {
                requests: requests.or(Some(REMOTE_REQUESTS)),
                time: time.or(Some(REMOTE_TIME)),
            }
        }
    }

    /// The time the shrink of a check's first (`first`) or a further deviation may take.
    pub fn time(&self, first: bool) -> Duration {
        self.time.unwrap_or(if first {
            EMBEDDED_TIME_FIRST
        } else {
            EMBEDDED_TIME_MORE
        })
    }
}

/// What one shrink spent, and why it stopped early if it did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShrinkStats {
    /// Requests sent while shrinking.
    pub requests: u64,
    /// Candidates sent.
    pub sent: usize,
    /// Candidates answered from the cache (tried before: not sent again).
    pub cached: usize,
    /// Requests of the last candidate sent (a candidate is sent only while the requests before
    /// it are under the budget, so `requests - last` is under it).
    pub last: u64,
    /// Set when a budget stopped the shrink: which one, and what was spent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped: Option<String>,
}

/// One shrink's candidates: each judged at most once, within the budget. `H` is what a run that
/// showed the deviation recorded.
pub struct Candidates<H> {
    budget: ShrinkBudget,
    time: Duration,
    started: Instant,
    /// Candidate (its steps as JSON) -> what its run recorded when it showed the deviation, or
    /// None when it did not.
    tried: HashMap<String, Option<H>>,
    /// What was spent so far.
    pub stats: ShrinkStats,
}

impl<H: Clone> Candidates<H> {
    /// A shrink with `budget`, for a check's first deviation (`first`) or a further one.
    pub fn new(budget: ShrinkBudget, first: bool) -> Self {
        Candidates {
            budget,
            time: budget.time(first),
            started: Instant::now(),
            tried: HashMap::new(),
            stats: ShrinkStats::default(),
        }
    }

    /// Judges `steps`: from the cache if tried before; else, while the budget allows, by `run`,
    /// which sends them and returns the requests it sent and, if the run showed the deviation,
    /// what it recorded. Returns the outcome and the recorded hit.
    pub fn judge(
        &mut self,
        steps: &[Step],
        run: impl FnOnce(&[Step]) -> (u64, Option<H>),
    ) -> (Tried, Option<H>) {
        let key = serde_json::to_string(steps).expect("steps serialise");
        if let Some(known) = self.tried.get(&key) {
            self.stats.cached += 1;
            return (outcome(known.is_some()), known.clone());
        }
        if self.stats.stopped.is_some() {
            return (Tried::Spent, None);
        }
        if let Some(why) = self.spent() {
            self.stats.stopped = Some(why);
            return (Tried::Spent, None);
        }
        let (requests, hit) = run(steps);
        self.stats.requests += requests;
        self.stats.sent += 1;
        self.stats.last = requests;
        self.tried.insert(key, hit.clone());
        (outcome(hit.is_some()), hit)
    }

    /// Which budget is spent, if one is, with what was spent.
    fn spent(&self) -> Option<String> {
        let s = &self.stats;
        let so_far = format!(
            "{} request(s) over {} candidate(s) sent, {} more answered from the cache",
            s.requests, s.sent, s.cached
        );
        if let Some(limit) = self.budget.requests.filter(|l| s.requests >= *l) {
            return Some(format!(
                "shrinking stopped early: request budget spent (--shrink-requests {limit}): \
                 {so_far}"
            ));
        }
        let elapsed = self.started.elapsed();
        (elapsed >= self.time).then(|| {
            format!(
                "shrinking stopped early: time budget spent (--shrink-time {}): {so_far}",
                self.time.as_secs()
            )
        })
    }
}

fn outcome(hit: bool) -> Tried {
    if hit { Tried::Fails } else { Tried::Passes }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn call(n: u64) -> Step {
        Step::Call {
            operation: "DescribeCustomKeyStores".into(),
            body: json!({ "Limit": n }),
            expect: None,
        }
    }

    #[test]
    fn a_candidate_tried_before_is_answered_from_the_cache_not_sent_again() {
        let mut candidates: Candidates<u64> = Candidates::new(ShrinkBudget::default(), true);
        let mut sent: Vec<Vec<Step>> = Vec::new();
        let mut run = |s: &[Step]| {
            sent.push(s.to_vec());
            // Two requests per candidate; a sequence of one step shows the deviation.
            (2, (s.len() == 1).then_some(7))
        };
        let one = vec![call(1)];
        let two = vec![call(1), call(2)];
        assert_eq!(candidates.judge(&one, &mut run), (Tried::Fails, Some(7)));
        assert_eq!(candidates.judge(&two, &mut run), (Tried::Passes, None));
        assert_eq!(candidates.judge(&one, &mut run), (Tried::Fails, Some(7)));
        assert_eq!(candidates.judge(&two, &mut run), (Tried::Passes, None));
        assert_eq!(sent, vec![one, two], "each candidate was sent once");
        assert_eq!(
            (
                candidates.stats.requests,
                candidates.stats.sent,
                candidates.stats.cached
            ),
            (4, 2, 2)
        );
    }

    #[test]
    fn the_request_budget_stops_sending_but_the_cache_still_answers() {
        let budget = ShrinkBudget {
            requests: Some(5),
            time: None,
        };
        let mut candidates: Candidates<()> = Candidates::new(budget, true);
        let mut sends = 0;
        let mut run = |_: &[Step]| {
            sends += 1;
            (2, Some(()))
        };
        let outcomes: Vec<Tried> = (0..5)
            .map(|n| candidates.judge(&[call(n)], &mut run).0)
            .collect();
        use Tried::*;
        assert_eq!(outcomes, vec![Fails, Fails, Fails, Spent, Spent]);
        assert_eq!(candidates.judge(&[call(0)], &mut run).0, Fails, "cached");
        assert_eq!(sends, 3, "sent while under 5 requests: 0, 2, 4");
        let stats = &candidates.stats;
        assert_eq!((stats.requests, stats.last), (6, 2));
        let why = stats.stopped.as_deref().expect("stopped");
        assert!(
            why.contains("request budget spent (--shrink-requests 5)"),
            "{why}"
        );
        assert!(why.contains("6 request(s) over 3 candidate(s)"), "{why}");
    }

    #[test]
    fn remote_defaults_are_budgeted_and_embedded_ones_keep_todays() {
        let remote = ShrinkBudget::resolve(None, None, false);
        assert_eq!(remote.requests, Some(REMOTE_REQUESTS));
        assert_eq!(remote.time(true), REMOTE_TIME);
        let embedded = ShrinkBudget::resolve(None, None, true);
        assert_eq!(embedded.requests, None);
        assert_eq!(
            (embedded.time(true), embedded.time(false)),
            (EMBEDDED_TIME_FIRST, EMBEDDED_TIME_MORE)
        );
        let given = ShrinkBudget::resolve(Some(9), Some(Duration::from_secs(3)), true);
        assert_eq!(
            (given.requests, given.time(false)),
            (Some(9), Duration::from_secs(3))
        );
    }
}
