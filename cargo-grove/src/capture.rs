//! While the dashboard is on screen, whatever is written to the process's stderr (a
//! module's `eprintln!`, a panic message printed by a module's own standard library, a
//! library's warning) goes to the log pane instead of through the picture. Standard error
//! is pointed at a pipe, read by a thread into the [`LogLines`]; dropping the
//! [`StderrCapture`] points it back and lets the thread finish what is left.

use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::os::fd::OwnedFd;
use std::thread::JoinHandle;

use rustix::io::fcntl_dupfd_cloexec;
use rustix::pipe::{PipeFlags, pipe_with};
use rustix::stdio::dup2_stderr;

use crate::logs::LogLines;

/// Standard error, captured into log lines until dropped.
#[derive(Debug)]
pub struct StderrCapture {
    /// The real standard error, put back on drop.
    saved: Option<OwnedFd>,
    reader: Option<JoinHandle<()>>,
}

impl StderrCapture {
    /// Points standard error at `lines`.
    pub fn start(lines: &LogLines) -> io::Result<Self> {
        let saved = fcntl_dupfd_cloexec(io::stderr(), 3)?;
        let (read, write) = pipe_with(PipeFlags::CLOEXEC)?;
        dup2_stderr(&write)?;
        // fd 2 now holds the write end; this copy goes, so that the reader sees the end of
        // the pipe once fd 2 is pointed back.
        drop(write);
        let lines = lines.clone();
        let reader = std::thread::Builder::new()
            .name("grove-stderr".into())
            .spawn(move || {
                for line in BufReader::new(File::from(read)).lines() {
                    match line {
                        Ok(line) => lines.push(&line),
                        Err(_) => break,
                    }
                }
            })?;
        Ok(Self {
            saved: Some(saved),
            reader: Some(reader),
        })
    }
}

impl Drop for StderrCapture {
    fn drop(&mut self) {
        if let Some(saved) = self.saved.take() {
            // Once fd 2 is the terminal again, the pipe's last write end is closed.
            if dup2_stderr(&saved).is_ok()
                && let Some(reader) = self.reader.take()
            {
                let _ = reader.join();
            }
        }
    }
}
