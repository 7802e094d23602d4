//! [`CrateBuilder`]: runs cargo on a module crate and collects its library and diagnostics.
//!
//! cargo runs with `--message-format=json`: the library's path comes from the
//! `compiler-artifact` message of the crate's `cdylib` target, and the compiler's rendered
//! diagnostics are collected into [`BuildError::Compile`]. A [`Cancel`] lets another thread
//! kill the cargo that is running.

use std::ffi::OsString;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Instant;

use super::cargo_output::{cargo_error, parse_manifest, parse_progress, read_messages, same_file};
use super::{BuildError, BuildOptions, profile};
use crate::console::Console;

/// Told, from another thread, how many of a build's units are built out of how many.
pub(super) type Progress<'a> = &'a (dyn Fn(usize, usize) + Sync);

/// Builds one module crate with cargo.
#[derive(Clone, Debug)]
pub(crate) struct CrateBuilder {
    /// The crate's directory, canonical.
    pub(super) dir: PathBuf,
    /// Its Cargo.toml.
    manifest: PathBuf,
    /// `package.name`.
    package: String,
    /// Whether its Cargo.toml is also a workspace root: then `-p` selects the package.
    workspace_root: bool,
    options: BuildOptions,
    /// `$CARGO`, or `cargo`.
    cargo: OsString,
}

impl CrateBuilder {
    /// A builder for the crate in `crate_dir` (the directory of its Cargo.toml).
    pub(crate) fn new(crate_dir: &Path, options: BuildOptions) -> Result<Self, BuildError> {
        let not_a_crate = |reason: String| BuildError::NotACrate {
            dir: crate_dir.to_owned(),
            reason,
        };
        let dir = crate_dir
            .canonicalize()
            .map_err(|e| not_a_crate(format!("the directory cannot be opened ({e})")))?;
        let manifest = dir.join("Cargo.toml");
        if !manifest.is_file() {
            return Err(not_a_crate(
                "it has no Cargo.toml: point at the module crate's directory".into(),
            ));
        }
        let text = std::fs::read_to_string(&manifest)
            .map_err(|e| not_a_crate(format!("its Cargo.toml cannot be read ({e})")))?;
        let parsed = parse_manifest(&text);
        let package = parsed.package.ok_or_else(|| {
            not_a_crate(
                "its Cargo.toml has no [package] name (a workspace root?): point at the \
                 module crate's own directory"
                    .into(),
            )
        })?;
        let mut options = options;
        if let Some(target_dir) = &mut options.target_dir {
            // cargo runs in the crate's directory; the caller meant its own.
            *target_dir = std::path::absolute(&*target_dir).map_err(|e| {
                not_a_crate(format!(
                    "the target directory {} cannot be resolved ({e})",
                    target_dir.display()
                ))
            })?;
        }
        Ok(Self {
            dir,
            manifest,
            package,
            workspace_root: parsed.workspace,
            options,
            cargo: std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()),
        })
    }

    /// Builds the crate, blocking, and returns its cdylib's path.
    #[cfg(test)]
    pub(crate) fn build(&self) -> Result<PathBuf, BuildError> {
        self.run(None, None)
    }

    /// As [`CrateBuilder::build`], saying so in `tracing` and on `console`: that the build
    /// starts, how far it is (crates built out of the total, from cargo's own count), and
    /// how long it took. A first build compiles every dependency: many seconds.
    pub(crate) fn build_reporting(&self, console: Console) -> Result<PathBuf, BuildError> {
        let started = Instant::now();
        tracing::info!(krate = %self.package, dir = %self.dir.display(), "building module crate");
        console.line(format_args!(
            "building module crate `{}` ({})",
            self.package,
            self.dir.display()
        ));
        let progress = console.progress(&self.package);
        let result = self.run(None, Some(&|done, total| progress.update(done, total)));
        progress.finish();
        if result.is_ok() {
            let took = started.elapsed();
            tracing::info!(krate = %self.package, took_ms = took.as_millis() as u64, "module crate built");
            console.line(format_args!(
                "built `{}` in {:.1} s",
                self.package,
                took.as_secs_f64()
            ));
        }
        result
    }

    fn command(&self, progress: bool) -> Command {
        let mut command = Command::new(&self.cargo);
        command
            .current_dir(&self.dir)
            .args([
                "build",
                "--message-format=json",
                "--color=never",
                "--manifest-path",
            ])
            .arg(&self.manifest);
        if self.workspace_root {
            command.args(["-p", &self.package]);
        }
        if self.options.release {
            command.arg("--release");
        }
        if let Some(target_dir) = &self.options.target_dir {
            command.arg("--target-dir").arg(target_dir);
        }
        if !self.options.features.is_empty() {
            command
                .arg("--features")
                .arg(self.options.features.join(","));
        }
        command.args(profile::config_args(
            self.options.dev_profile,
            self.options.release,
            &self.package,
            &self.dir,
        ));
        if progress {
            // cargo counts units on its progress bar, which it draws on a terminal only
            // unless told to.
            command
                .env("CARGO_TERM_PROGRESS_WHEN", "always")
                .env("CARGO_TERM_PROGRESS_WIDTH", "100");
        }
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        command
    }

    /// Runs cargo. With `cancel`, the running cargo can be killed from another thread; with
    /// `progress`, it is told how far the build is.
    pub(super) fn run(
        &self,
        cancel: Option<&Cancel>,
        progress: Option<Progress<'_>>,
    ) -> Result<PathBuf, BuildError> {
        let started = Instant::now();
        tracing::debug!(krate = %self.package, dir = %self.dir.display(), "building crate");
        let mut child = self.command(progress.is_some()).spawn().map_err(|source| {
            BuildError::CargoUnavailable {
                cargo: self.cargo.clone(),
                dir: self.dir.clone(),
                source,
            }
        })?;
        let lost_output = |source| BuildError::CargoOutput {
            krate: self.package.clone(),
            source,
        };
        let (Some(stdout), Some(mut stderr)) = (child.stdout.take(), child.stderr.take()) else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(lost_output(io::Error::other("cargo's output is not piped")));
        };
        let mut child = Some(child);
        if let Some(cancel) = cancel {
            // Under the lock: a `stop` either sees the child or was seen here.
            let mut running = cancel.child.lock().unwrap_or_else(PoisonError::into_inner);
            if cancel.stopped.load(Ordering::SeqCst)
                && let Some(child) = child.as_mut()
            {
                let _ = child.kill();
            }
            *running = child.take();
        }
        let (output, stderr_text) = std::thread::scope(|scope| {
            let stderr_reader = std::thread::Builder::new()
                .name("grove-cargo-stderr".into())
                .spawn_scoped(scope, move || read_stderr(&mut stderr, progress));
            let output = read_messages(stdout);
            let stderr_text = match stderr_reader {
                Ok(reader) => reader.join().unwrap_or_else(|_| Ok(String::new())),
                Err(e) => Err(e),
            };
            (output, stderr_text)
        });
        let mut child = match cancel {
            Some(cancel) => cancel
                .child
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take(),
            None => child,
        };
        let status = child
            .as_mut()
            .map(Child::wait)
            .transpose()
            .map_err(lost_output)?;
        let output = output.map_err(lost_output)?;
        let success = status.is_some_and(|s| s.success());
        if !success {
            let mut errors = output.errors;
            if errors.is_empty() {
                errors.push(cargo_error(&stderr_text.unwrap_or_default(), status));
            }
            tracing::debug!(krate = %self.package, errors = errors.len(), "build failed");
            return Err(BuildError::Compile {
                krate: self.package.clone(),
                dir: self.dir.clone(),
                errors,
                warnings: output.warnings,
            });
        }
        for warning in &output.warnings {
            tracing::trace!(krate = %self.package, warning = %warning.trim_end(), "rustc warning");
        }
        let artifact = output
            .cdylibs
            .into_iter()
            .find(|(manifest, _)| same_file(manifest, &self.manifest))
            .map(|(_, artifact)| artifact)
            .ok_or_else(|| BuildError::NoCdylib {
                krate: self.package.clone(),
                manifest: self.manifest.clone(),
            })?;
        tracing::debug!(
            krate = %self.package,
            artifact = %artifact.display(),
            warnings = output.warnings.len(),
            took_ms = started.elapsed().as_millis() as u64,
            "crate built"
        );
        Ok(artifact)
    }
}

/// Reads cargo's stderr to its end: its text, without the progress bar, which goes to
/// `progress` instead (each count once). The bar is redrawn after a carriage return, so
/// lines are split at both line ends, and read as they come.
fn read_stderr(stderr: &mut impl Read, progress: Option<Progress<'_>>) -> io::Result<String> {
    let mut text = String::new();
    let mut last = None;
    let mut segment = Vec::new();
    let mut end_segment = |segment: &mut Vec<u8>| {
        let line = String::from_utf8_lossy(segment);
        match parse_progress(&line) {
            Some(count) => {
                if last != Some(count)
                    && let Some(progress) = progress
                {
                    progress(count.0, count.1);
                }
                last = Some(count);
            }
            None if line.trim().is_empty() => {}
            None => {
                text.push_str(&line);
                text.push('\n');
            }
        }
        segment.clear();
    };
    let mut reader = BufReader::new(stderr);
    loop {
        let chunk = match reader.fill_buf() {
            Ok([]) => break,
            Ok(chunk) => chunk,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let len = chunk.len();
        for &byte in chunk {
            if byte == b'\n' || byte == b'\r' {
                end_segment(&mut segment);
            } else {
                segment.push(byte);
            }
        }
        reader.consume(len);
    }
    end_segment(&mut segment);
    Ok(text)
}

/// Lets [`BuildWatch`](super::BuildWatch)'s drop kill the cargo its thread is waiting on.
#[derive(Debug, Default)]
pub(super) struct Cancel {
    stopped: AtomicBool,
    child: Mutex<Option<Child>>,
}

impl Cancel {
    pub(super) fn stop(&self) {
        self.stopped.store(true, Ordering::SeqCst);
        if let Some(child) = self
            .child
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_mut()
        {
            let _ = child.kill();
        }
    }

    pub(super) fn stopped(&self) -> bool {
        self.stopped.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::builder::test_crate::{TestCrate, has_mark, lib_rs};

    #[test]
    fn build_returns_the_cdylib() {
        let crate_ = TestCrate::new(r#"["cdylib"]"#, &lib_rs(1));
        let artifact = crate_.builder().build().unwrap();
        assert!(
            artifact.starts_with(crate_.target.path()),
            "{}",
            artifact.display()
        );
        assert_eq!(
            artifact.file_name().unwrap(),
            "libgrove_builder_probe.so",
            "{}",
            artifact.display()
        );
        let bytes = std::fs::read(&artifact).unwrap();
        crate::ffi::elf::check_and_hash(&bytes).unwrap();
        assert!(has_mark(&artifact, 1));
    }

    #[test]
    fn stderr_progress_is_told_apart_from_text() {
        let stderr = "   Compiling a v0.1.0\n    Building [>   ] 1/16: a, b   \r    \
                      Building [=>  ] 2/16: b\r                \r   Compiling b v0.1.0\n\
                      \r    Building [=>  ] 2/16: b\rerror: could not compile `b`\n";
        let seen = Mutex::new(Vec::new());
        let text = read_stderr(
            &mut stderr.as_bytes(),
            Some(&|done, total| seen.lock().unwrap().push((done, total))),
        )
        .unwrap();
        assert_eq!(*seen.lock().unwrap(), [(1, 16), (2, 16)]);
        assert_eq!(
            text,
            "   Compiling a v0.1.0\n   Compiling b v0.1.0\nerror: could not compile `b`\n"
        );
    }

    #[test]
    fn a_crate_without_a_cdylib_is_a_clear_error() {
        let crate_ = TestCrate::new(r#"["rlib"]"#, "pub fn f() -> u32 { 1 }\n");
        let error = crate_.builder().build().unwrap_err();
        assert!(matches!(error, BuildError::NoCdylib { .. }), "{error:?}");
        let message = error.to_string();
        assert!(
            message.contains(r#"crate-type = ["cdylib", "rlib"]"#),
            "{message}"
        );
        assert!(message.contains("grove-builder-probe"), "{message}");
    }

    #[test]
    fn a_directory_without_cargo_toml_is_not_a_crate() {
        let dir = tempfile::tempdir().unwrap();
        let error = CrateBuilder::new(dir.path(), BuildOptions::default()).unwrap_err();
        assert!(matches!(error, BuildError::NotACrate { .. }), "{error:?}");
        assert!(error.to_string().contains("no Cargo.toml"), "{error}");
    }

    #[test]
    fn a_missing_cargo_says_to_check_path() {
        let crate_ = TestCrate::new(r#"["cdylib"]"#, &lib_rs(1));
        let mut builder = crate_.builder();
        builder.cargo = "/nonexistent/grove-test/cargo".into();
        let error = builder.build().unwrap_err();
        assert!(
            matches!(error, BuildError::CargoUnavailable { .. }),
            "{error:?}"
        );
        assert!(error.to_string().contains("is cargo on PATH?"), "{error}");
    }
}
