//! The dashboard's log pane: a `tracing` subscriber that keeps the last lines in memory
//! instead of writing them to the terminal the dashboard draws on. The engine's own lines
//! and the modules' (forwarded through the engine) both land here.

use std::collections::VecDeque;
use std::io;
use std::sync::{Arc, Mutex, PoisonError};

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

/// Lines kept.
const KEPT: usize = 2000;

/// The last log lines, shared between the subscriber and the dashboard.
#[derive(Debug, Clone, Default)]
pub struct LogLines {
    lines: Arc<Mutex<VecDeque<String>>>,
}

impl LogLines {
    /// Installs a global `tracing` subscriber writing here, filtered by `RUST_LOG` (default
    /// `info`). Fails when the process already has one.
    pub fn install() -> Result<Self, tracing_subscriber::util::TryInitError> {
        use tracing_subscriber::util::SubscriberInitExt;
        let lines = Self::default();
        tracing_subscriber::fmt()
            .with_env_filter(
                EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
            )
            .with_ansi(false)
            .with_target(false)
            .without_time()
            .with_writer(lines.clone())
            .finish()
            .try_init()?;
        Ok(lines)
    }

    /// Adds `text`, split into lines.
    pub fn push(&self, text: &str) {
        let mut lines = self.lines.lock().unwrap_or_else(PoisonError::into_inner);
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            if lines.len() == KEPT {
                lines.pop_front();
            }
            lines.push_back(line.trim_end().to_owned());
        }
    }

    /// The last `n` lines, oldest first.
    pub fn latest(&self, n: usize) -> Vec<String> {
        let lines = self.lines.lock().unwrap_or_else(PoisonError::into_inner);
        lines
            .iter()
            .skip(lines.len().saturating_sub(n))
            .cloned()
            .collect()
    }
}

/// One event's text, added when the formatter is done with it.
#[derive(Debug)]
pub struct LineWriter {
    to: LogLines,
    text: Vec<u8>,
}

impl io::Write for LineWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.text.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for LineWriter {
    fn drop(&mut self) {
        self.to.push(&String::from_utf8_lossy(&self.text));
    }
}

impl<'a> MakeWriter<'a> for LogLines {
    type Writer = LineWriter;

    fn make_writer(&'a self) -> LineWriter {
        LineWriter {
            to: self.clone(),
            text: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_latest_lines_in_order() {
        let logs = LogLines::default();
        logs.push("one\ntwo\n");
        logs.push("three");
        assert_eq!(logs.latest(2), ["two", "three"]);
        assert_eq!(logs.latest(10), ["one", "two", "three"]);
    }
}
