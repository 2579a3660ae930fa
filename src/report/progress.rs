//! A progress bar over the checks, on stderr, only for people watching a terminal.
//!
//! libtest-mimic prints its trial lines on stdout, and indicatif redraws the bar on stderr by
//! moving the cursor up over the lines it drew last. When both are the same terminal, a trial
//! line written between two redraws pushes the bar up, and the next redraw leaves a copy of
//! it behind. So while the bar is shown and stdout is a terminal too, stdout is routed through
//! the bar ([`relay`]): the process's stdout becomes a pipe, and one thread writes each
//! complete line to the real stdout with the bar cleared around it, so only one bar is ever on
//! screen. Stdout that is not a terminal (a file, a pipe) is left alone.

use std::io::{BufRead, IsTerminal, Write};
use std::sync::{Arc, Mutex};

use indicatif::{ProgressBar, ProgressStyle};

/// A progress bar shown only when stderr is a terminal and `CI` is unset; otherwise every
/// method does nothing. Cheap to clone and safe to share between parallel trials.
#[derive(Debug, Clone)]
pub struct Progress {
    bar: Option<ProgressBar>,
    relay: Arc<Mutex<Option<relay::Relay>>>,
}

impl Progress {
    /// A bar over `total_checks` checks, or a silent one when nobody watches a terminal. When
    /// stdout is a terminal too, its lines are printed through the bar from now until
    /// [`Progress::finish`].
    pub fn new(total_checks: u64) -> Progress {
        let watched = std::io::stderr().is_terminal() && std::env::var_os("CI").is_none();
        if !watched {
            return Progress::hidden();
        }
        let progress = Progress::shown(total_checks);
        if std::io::stdout().is_terminal()
            && let Some(bar) = &progress.bar
        {
            // Without the relay the bar still works, it may just leave copies behind.
            if let Ok(r) = relay::Relay::start(bar.clone()) {
                *progress.relay.lock().unwrap_or_else(|p| p.into_inner()) = Some(r);
            }
        }
        progress
    }

    /// A progress object that never draws (e.g. for `--quiet`).
    pub fn hidden() -> Progress {
        Progress {
            bar: None,
            relay: Arc::default(),
        }
    }

    /// Whether stdout is being printed through the bar.
    pub fn relays_stdout(&self) -> bool {
        self.relay
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some()
    }

    fn shown(total_checks: u64) -> Progress {
        let bar = ProgressBar::new(total_checks);
        if let Ok(style) = ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} {wide_msg}",
        ) {
            bar.set_style(style);
        }
        Progress {
            bar: Some(bar),
            relay: Arc::default(),
        }
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

    /// Removes the bar once all checks are done, and gives stdout back (every line printed
    /// so far has reached it when this returns).
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        let relay = self.relay.lock().unwrap_or_else(|p| p.into_inner()).take();
        drop(relay);
    }
}

/// Copies complete lines from `source` to `sink`, each with the bar cleared around it, until
/// `source` ends; a last line without a newline is copied too.
pub fn pump(bar: &ProgressBar, source: impl std::io::Read, mut sink: impl Write) {
    let mut source = std::io::BufReader::new(source);
    let mut line = Vec::new();
    loop {
        line.clear();
        match source.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => bar.suspend(|| {
                let _ = sink.write_all(&line).and_then(|()| sink.flush());
            }),
        }
    }
}

#[cfg(unix)]
mod relay {
    //! Stdout routed through the bar: fd 1 becomes a pipe's writing end, a thread pumps it.

    use std::io::Write;
    use std::os::fd::{AsFd, OwnedFd};
    use std::thread::JoinHandle;

    use indicatif::ProgressBar;

    /// Stdout routed through the bar; dropping it gives stdout back.
    #[derive(Debug)]
    pub struct Relay {
        saved: OwnedFd,
        pump: Option<JoinHandle<()>>,
    }

    impl Relay {
        /// Routes the process's stdout through `bar`.
        pub fn start(bar: ProgressBar) -> std::io::Result<Relay> {
            let (reader, writer) = std::io::pipe()?;
            let saved = std::io::stdout().as_fd().try_clone_to_owned()?;
            let sink = std::fs::File::from(saved.try_clone()?);
            std::io::stdout().flush()?;
            rustix::stdio::dup2_stdout(&writer)?;
            drop(writer);
            let pump = std::thread::Builder::new()
                .name("stdout-through-bar".into())
                .spawn(move || super::pump(&bar, reader, sink));
            match pump {
                Ok(pump) => Ok(Relay {
                    saved,
                    pump: Some(pump),
                }),
                Err(e) => {
                    rustix::stdio::dup2_stdout(&saved)?;
                    Err(e)
                }
            }
        }
    }

    impl Drop for Relay {
        fn drop(&mut self) {
            let _ = std::io::stdout().flush();
            // fd 1 was the pipe's only writing end: the pump sees its end and stops.
            if rustix::stdio::dup2_stdout(&self.saved).is_ok()
                && let Some(pump) = self.pump.take()
            {
                let _ = pump.join();
            }
        }
    }
}

#[cfg(not(unix))]
mod relay {
    //! Elsewhere stdout is not routed (the bar may leave copies between trial lines).

    use indicatif::ProgressBar;

    /// Never started.
    #[derive(Debug)]
    pub struct Relay;

    impl Relay {
        /// Not supported here.
        pub fn start(_bar: ProgressBar) -> std::io::Result<Relay> {
            Err(std::io::Error::other(
                "stdout is not routed on this platform",
            ))
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

    /// Catches a pump that loses, reorders or splits lines (e.g. stops at the first line, or
    /// drops a last line without a newline).
    #[test]
    fn the_pump_copies_every_line_whole_and_in_order_while_the_bar_runs() {
        let bar = ProgressBar::with_draw_target(Some(4), indicatif::ProgressDrawTarget::hidden());
        let (reader, mut writer) = std::io::pipe().unwrap();
        let sink = Arc::new(Mutex::new(Vec::new()));
        struct Sink(Arc<Mutex<Vec<u8>>>);
        impl Write for Sink {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let pump_bar = bar.clone();
        let out = Sink(sink.clone());
        let pump = std::thread::spawn(move || pump(&pump_bar, reader, out));
        writer.write_all(b"test a ... ").unwrap();
        bar.inc(1);
        writer.write_all(b"ok\ntest b ... FAILED\n").unwrap();
        bar.inc(1);
        writer.write_all(b"tail").unwrap();
        drop(writer);
        pump.join().unwrap();
        assert_eq!(
            String::from_utf8(sink.lock().unwrap().clone()).unwrap(),
            "test a ... ok\ntest b ... FAILED\ntail"
        );
        assert_eq!(bar.position(), 2);
    }

    #[test]
    fn a_hidden_progress_does_nothing() {
        let p = Progress::hidden();
        assert!(!p.is_visible());
        assert!(!p.relays_stdout());
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
