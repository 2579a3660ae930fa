//! The order a check's failing signatures are shrunk in, shared by the run and by `report
//! rejudge` so that both judge alike: the signatures its cases showed, then those met while
//! shrinking them, up to the deviation cap; and the finding kept for a signature that did not
//! show again while shrinking.

use std::collections::BTreeSet;

use crate::oracle::{Finding, Severity};

/// An entry of the worklist: what first showed a signature.
pub(super) trait Shown {
    /// The finding as first seen.
    fn finding(&self) -> &Finding;
}

/// The signatures to shrink, each with what first showed it.
pub(super) struct Worklist<T> {
    found: Vec<(String, T)>,
    met: Vec<(String, T)>,
    next: usize,
}

impl<T: Shown + Clone> Worklist<T> {
    /// A worklist starting with the signatures the check's cases showed, as many of those that
    /// count toward the cap (`counts`) as it allows, in their order; true when some were left
    /// out.
    pub(super) fn capped(
        mut found: Vec<(String, T)>,
        counts: impl Fn(&Finding) -> bool,
        cap: usize,
    ) -> (Self, bool) {
        let mut kept = 0;
        found.retain(|(_, t)| {
            if !counts(t.finding()) {
                return true;
            }
            kept += 1;
            kept <= cap
        });
        let worklist = Worklist {
            found,
            met: Vec::new(),
            next: 0,
        };
        (worklist, kept > cap)
    }

    /// The next signature to shrink.
    pub(super) fn next(&mut self) -> Option<(String, T)> {
        let i = self.next;
        self.next += 1;
        if i < self.found.len() {
            Some(self.found[i].clone())
        } else {
            self.met.get(i - self.found.len()).cloned()
        }
    }

    /// Every signature on the list so far.
    pub(super) fn known(&self) -> BTreeSet<String> {
        self.found
            .iter()
            .chain(&self.met)
            .map(|(s, _)| s.clone())
            .collect()
    }

    /// Adds the signatures met while shrinking one, as many as the cap leaves room for
    /// (`counts`: whether an entry counts toward the cap); true when some were left out.
    pub(super) fn meet(
        &mut self,
        mut newly: Vec<(String, T)>,
        counts: impl Fn(&Finding) -> bool,
        cap: usize,
    ) -> bool {
        let counted = self
            .found
            .iter()
            .chain(&self.met)
            .filter(|(_, t)| counts(t.finding()))
            .count();
        let room = cap.saturating_sub(counted);
        let capped = newly.len() > room;
        newly.truncate(room);
        self.met.extend(newly);
        capped
    }
}

/// The finding kept for a signature seen once and never again while shrinking (`tries`
/// candidates): timing or chance, not a deviation a run can stand behind, so it is unsettled
/// and fails only `--strict`.
pub(super) fn not_reproduced(first: &Finding, tries: usize) -> Finding {
    let mut flaky = first.clone();
    flaky.severity = Severity::Unsettled;
    flaky.message = format!(
        "{} (did not reproduce while shrinking ({tries} tries): the endpoint answers it only \
         sometimes, e.g. by timing; the case that showed it is kept as the counterexample)",
        flaky.message
    );
    flaky
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone)]
    struct E(Finding);

    impl Shown for E {
        fn finding(&self) -> &Finding {
            &self.0
        }
    }

    fn e(rule: &str) -> (String, E) {
        let f = Finding {
            severity: Severity::Failure,
            operation: "Op".into(),
            rule: rule.into(),
            kind: String::new(),
            message: "m".into(),
            exchange: None,
        };
        (f.signature(), E(f))
    }

    #[test]
    fn found_signatures_come_first_then_those_met_up_to_the_cap() {
        let (mut w, capped) = Worklist::capped(vec![e("a"), e("b"), e("x")], |f| f.rule != "x", 3);
        assert!(!capped, "x does not count toward the cap");
        assert_eq!(w.next().unwrap().0, "Op/a");
        let counts = |f: &Finding| f.rule != "x";
        assert!(!w.meet(vec![e("c")], counts, 3));
        assert!(w.meet(vec![e("d")], counts, 3), "the cap of 3 is reached");
        assert_eq!(w.known().len(), 4);
        let order: Vec<String> = std::iter::from_fn(|| w.next().map(|(s, _)| s)).collect();
        assert_eq!(order, ["Op/b", "Op/x", "Op/c"]);
        let (_, capped) = Worklist::capped(vec![e("a"), e("b")], |_| true, 1);
        assert!(capped);
    }

    #[test]
    fn a_signature_not_reproduced_is_unsettled_and_says_so() {
        let (_, E(f)) = e("a");
        let g = not_reproduced(&f, 7);
        assert_eq!(g.severity, Severity::Unsettled);
        assert!(g.message.contains("(7 tries)"), "{}", g.message);
        assert_eq!(g.signature(), f.signature());
    }
}
