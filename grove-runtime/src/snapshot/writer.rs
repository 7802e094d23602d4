//! [`Writer`]: the thread that puts snapshots on disk, so that a frame only pays for
//! encoding the state.

use std::path::PathBuf;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;

use super::file::Header;

enum Job {
    Write {
        module: String,
        path: PathBuf,
        header: Header,
        state: Vec<u8>,
    },
    /// Answers once every job before it is done.
    Flush(Sender<()>),
}

/// The snapshot writer thread.
#[derive(Debug)]
pub(crate) struct Writer {
    jobs: Option<Sender<Job>>,
    failures: Arc<Mutex<Vec<(String, String)>>>,
    thread: Option<JoinHandle<()>>,
}

impl Writer {
    pub(crate) fn start() -> Self {
        let (jobs, receive): (Sender<Job>, Receiver<Job>) = channel();
        let failures = Arc::new(Mutex::new(Vec::new()));
        let failed = Arc::clone(&failures);
        let thread = std::thread::Builder::new()
            .name("grove-snapshots".into())
            .spawn(move || {
                crate::ffi::threads::register_host_thread();
                for job in receive {
                    match job {
                        Job::Write {
                            module,
                            path,
                            header,
                            state,
                        } => {
                            let bytes = super::file::encode(&header, &state);
                            drop(state);
                            if let Err(e) = super::file::write_atomic(&path, &bytes) {
                                failed.lock().unwrap_or_else(PoisonError::into_inner).push((
                                    module,
                                    format!("cannot write {}: {e}", path.display()),
                                ));
                            }
                        }
                        Job::Flush(done) => {
                            let _ = done.send(());
                        }
                    }
                }
                crate::ffi::threads::unregister_host_thread();
            })
            .ok();
        Self {
            jobs: thread.as_ref().map(|_| jobs),
            failures,
            thread,
        }
    }

    /// Writes a snapshot of `state` to `path`, in the background.
    pub(crate) fn write(&self, module: String, path: PathBuf, header: Header, state: Vec<u8>) {
        let job = Job::Write {
            module,
            path,
            header,
            state,
        };
        let job = match &self.jobs {
            Some(jobs) => match jobs.send(job) {
                Ok(()) => return,
                Err(std::sync::mpsc::SendError(job)) => job,
            },
            None => job,
        };
        if let Job::Write {
            module,
            path,
            header,
            state,
        } = job
        {
            self.write_here(module, path, &super::file::encode(&header, &state));
        }
    }

    /// Without a thread (it could not be started): on the caller's.
    fn write_here(&self, module: String, path: PathBuf, bytes: &[u8]) {
        if let Err(e) = super::file::write_atomic(&path, bytes) {
            self.failures
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push((module, format!("cannot write {}: {e}", path.display())));
        }
    }

    pub(crate) fn failures(&self) -> Vec<(String, String)> {
        std::mem::take(&mut *self.failures.lock().unwrap_or_else(PoisonError::into_inner))
    }

    pub(crate) fn flush(&self) {
        let Some(jobs) = &self.jobs else { return };
        let (done, wait) = channel();
        if jobs.send(Job::Flush(done)).is_ok() {
            let _ = wait.recv();
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        drop(self.jobs.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
