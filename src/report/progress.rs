//! A progress bar over the checks, on stderr, only for people watching a terminal.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressStyle};

/// A progress bar shown only when stderr is a terminal and `CI` is unset; otherwise every
/// method does nothing. Cheap to clone and safe to share between parallel trials.
#[derive(Debug, Clone)]
pub struct Progress {
    bar: Option<ProgressBar>,
}

impl Progress {
    /// A bar over `total_checks` checks, or a silent one when nobody watches a terminal.
    pub fn new(total_checks: u64) -> Progress {
        let watched = std::io::stderr().is_terminal() && std::env::var_os("CI").is_none();
        if watched {
            Progress::shown(total_checks)
        } else {
            Progress::hidden()
        }
    }

    /// A progress object that never draws (e.g. for `--quiet`).
    pub fn hidden() -> Progress {
        Progress { bar: None }
    }

    fn shown(total_checks: u64) -> Progress {
        let bar = ProgressBar::new(total_checks);
        if let Ok(style) = ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} {wide_msg}",
        ) {
            bar.set_style(style);
        }
        Progress { bar: Some(bar) }
    }

    /// Whether the bar draws at all.
    pub fn is_visible(&self) -> bool {
        self.bar.is_some()
    }

    /// Shows `message` (e.g. the check now running) next to the bar.
    pub fn set_message(&self, message: &str) {
        if let Some(bar) = &self.bar {
            bar.set_message(message.to_string());
        }
    }

    /// Sets how many checks the bar counts to (e.g. one shard's share of them).
    pub fn set_total(&self, total_checks: u64) {
        if let Some(bar) = &self.bar {
            bar.set_length(total_checks);
        }
    }

    /// Counts one more check done.
    pub fn inc(&self) {
        if let Some(bar) = &self.bar {
            bar.inc(1);
        }
    }

    /// Runs `f` with the bar hidden, so output written meanwhile does not tear it.
    pub fn suspend<R>(&self, f: impl FnOnce() -> R) -> R {
        match &self.bar {
            Some(bar) => bar.suspend(f),
            None => f(),
        }
    }

    /// Removes the bar once all checks are done.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shareable<T: Clone + Send + Sync + 'static>() {}

    #[test]
    fn progress_is_shareable_between_parallel_trials() {
        shareable::<Progress>();
        let p = Progress::shown(8);
        let handles: Vec<_> = (0..8)
            .map(|i| {
                let p = p.clone();
                std::thread::spawn(move || {
                    p.set_message(&format!("check {i}"));
                    p.inc();
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        assert_eq!(p.bar.as_ref().unwrap().position(), 8);
        p.finish();
        assert!(p.bar.as_ref().unwrap().is_finished());
    }

    #[test]
    fn a_hidden_progress_does_nothing() {
        let p = Progress::hidden();
        assert!(!p.is_visible());
        p.set_message("x");
        p.inc();
        assert_eq!(p.suspend(|| 3), 3);
        p.finish();
    }

    #[test]
    fn outside_a_terminal_or_under_ci_nothing_is_drawn() {
        // Under `cargo test` stderr is captured or CI is set; either way no bar.
        if std::io::stderr().is_terminal() && std::env::var_os("CI").is_none() {
            eprintln!("stderr is a terminal and CI unset; skipped");
            return;
        }
        assert!(!Progress::new(3).is_visible());
    }
}
