//! Progress of the long offline jobs (export, import, export --verify, verify, rebuild): an
//! indicatif bar with events/s and ETA when stderr is a terminal, otherwise a few plain `tracing`
//! lines per run (at each quarter, or every 30 s), never one per record.
//! Does not count anything itself: the jobs report `(done, total)` through [`Progress::callback`].

use std::io::IsTerminal;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressState, ProgressStyle};

/// Longest quiet stretch between two plain progress lines.
const LINE_EVERY: Duration = Duration::from_secs(30);

/// The progress of one job, shown on stderr.
#[derive(Clone)]
pub struct Progress {
    display: Arc<Display>,
}

enum Display {
    Bar(ProgressBar),
    Lines(Mutex<Lines>),
}

/// What the plain lines remember between reports.
struct Lines {
    what: &'static str,
    phases: &'static [&'static str],
    phase: usize,
    started: Instant,
    last_line: Instant,
    last_done: u64,
    /// The next quarter (1..=4) that earns a line.
    next_quarter: u64,
}

impl Progress {
    /// Progress for `what` (e.g. `"verify"`). A job that reports in several passes, each
    /// counting from zero again (import: read the file, then rebuild the views), names them in
    /// `phases`; a pass starts when `done` goes down.
    pub fn start(what: &'static str, phases: &'static [&'static str]) -> Progress {
        let display = if std::io::stderr().is_terminal() {
            let style = ProgressStyle::with_template(
                "{prefix} [{elapsed_precise}] [{wide_bar}] {human_pos}/{human_len} events, {rate}, ETA {eta}",
            )
            .expect("a valid template")
            .with_key("rate", |state: &ProgressState, out: &mut dyn std::fmt::Write| {
                let _ = write!(out, "{:.0} events/s", state.per_sec());
            })
            .progress_chars("=> ");
            let bar = ProgressBar::new(0)
                .with_style(style)
                .with_prefix(label(what, phases, 0));
            Display::Bar(bar)
        } else {
            let now = Instant::now();
            Display::Lines(Mutex::new(Lines {
                what,
                phases,
                phase: 0,
                started: now,
                last_line: now,
                last_done: 0,
                next_quarter: 1,
            }))
        };
        Progress {
            display: Arc::new(display),
        }
    }

    /// The `(done, total)` callback the store and the export functions take.
    pub fn callback(&self) -> impl Fn(u64, u64) + Send + Sync + 'static {
        let progress = self.clone();
        move |done, total| progress.report(done, total)
    }

    fn report(&self, done: u64, total: u64) {
        match &*self.display {
            Display::Bar(bar) => {
                if done < bar.position() {
                    // The next pass starts: a new prefix, a fresh rate and ETA.
                    bar.reset();
                }
                if bar.length() != Some(total) {
                    bar.set_length(total);
                }
                bar.set_position(done);
            }
            Display::Lines(lines) => {
                let mut lines = lines.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                lines.report(done, total);
            }
        }
    }

    /// Ends the display: the bar stays on screen at its last position, and what is printed next
    /// starts on a line of its own.
    pub fn finish(&self) {
        if let Display::Bar(bar) = &*self.display {
            bar.finish();
            eprintln!();
        }
    }
}

fn label(what: &str, phases: &[&str], phase: usize) -> String {
    match phases.get(phase) {
        Some(name) => format!("{what}: {name}"),
        None => what.to_string(),
    }
}

impl Lines {
    fn report(&mut self, done: u64, total: u64) {
        let now = Instant::now();
        if done < self.last_done {
            self.phase += 1;
            self.started = now;
            self.next_quarter = 1;
        } else if done == self.last_done && done > 0 {
            // Reported twice (a final report after a periodic one at the same count).
            return;
        }
        self.last_done = done;
        let quarter_reached = total == 0 || done.saturating_mul(4) >= total.saturating_mul(self.next_quarter);
        if !quarter_reached && now.duration_since(self.last_line) < LINE_EVERY {
            return;
        }
        while self.next_quarter <= 4
            && (total == 0 || done.saturating_mul(4) >= total.saturating_mul(self.next_quarter))
        {
            self.next_quarter += 1;
        }
        self.last_line = now;
        let seconds = now.duration_since(self.started).as_secs_f64();
        let rate = if seconds > 0.0 { done as f64 / seconds } else { 0.0 };
        let eta = if rate > 0.0 {
            format!("{:.0} s", total.saturating_sub(done) as f64 / rate)
        } else {
            "unknown".to_string()
        };
        let percent = done.saturating_mul(100).checked_div(total).unwrap_or(100);
        tracing::info!(
            done,
            total,
            events_per_second = rate as u64,
            "{}: {done}/{total} events ({percent}%), {rate:.0} events/s, ETA {eta}",
            label(self.what, self.phases, self.phase)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines() -> Lines {
        let now = Instant::now();
        Lines {
            what: "import",
            phases: &["reading", "rebuilding"],
            phase: 0,
            started: now,
            last_line: now,
            last_done: 0,
            next_quarter: 1,
        }
    }

    #[test]
    fn plain_lines_come_at_quarters_not_per_report() {
        let mut lines = lines();
        let mut quarters_logged = Vec::new();
        for done in (0..=1_000_000u64).step_by(65_536).chain([1_000_000]) {
            let before = lines.next_quarter;
            lines.report(done, 1_000_000);
            if lines.next_quarter != before {
                quarters_logged.push(done);
            }
        }
        assert_eq!(quarters_logged.len(), 4, "{quarters_logged:?}");
    }

    #[test]
    fn a_count_going_down_starts_the_next_phase() {
        let mut lines = lines();
        lines.report(100, 100);
        lines.report(10, 100);
        assert_eq!((lines.phase, lines.next_quarter), (1, 1));
        assert_eq!(label(lines.what, lines.phases, lines.phase), "import: rebuilding");
    }
}
