//! `cargo grove check`: builds a module crate and says what the loader would: its header
//! (module, type, ABI, SDK, panic strategy), its state schema and, when the project keeps
//! a snapshot of the module, whether that state would carry over into this build.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use grove_runtime::grove::abi;
use grove_runtime::{BuildOptions, HeaderInfo, build_crate, inspect_library, read_saved_state};

use crate::error::{Error, Result};

/// What `cargo grove check` found, as lines for a person; `Err` when the loader would
/// refuse the library or the saved state would not load.
pub fn check(crate_dir: &Path, build: BuildOptions, state_dir: Option<&Path>) -> Result<String> {
    let library = build_crate(crate_dir, build).map_err(|source| grove_runtime::Error::Build {
        dir: crate_dir.to_owned(),
        source: source.into(),
    })?;
    report(&library, state_dir)
}

fn row(out: &mut String, what: &str, text: impl std::fmt::Display) {
    let _ = writeln!(out, "{what:<10}  {text}");
}

/// The report for the library at `library`.
pub fn report(library: &Path, state_dir: Option<&Path>) -> Result<String> {
    let mut out = String::new();
    let size = std::fs::metadata(library).map(|m| m.len()).unwrap_or(0);
    row(
        &mut out,
        "library",
        format!("{} ({:.1} MB)", library.display(), size as f64 / 1e6),
    );
    let header = match HeaderInfo::read(library) {
        Ok(header) => header,
        Err(e) => {
            return Err(Error::CheckFailed(format!(
                "{out}\nthe loader would refuse it: {e}"
            )));
        }
    };
    row(
        &mut out,
        "module",
        format!("{} (type {})", header.module_name, header.type_name),
    );
    row(
        &mut out,
        "ABI",
        format!(
            "version {} (this host loads {}..={}) ✓",
            header.abi_version,
            abi::MIN_ABI_VERSION,
            abi::ABI_VERSION
        ),
    );
    row(
        &mut out,
        "built by",
        format!(
            "grove-sdk {} (this host: {}), {}",
            header.sdk_version,
            abi::SDK_VERSION,
            header.rustc_version
        ),
    );
    row(
        &mut out,
        "panic",
        match header.panic_unwind {
            Some(true) => "unwind: a panic is caught and the module skipped ✓",
            _ => "strategy not recorded (an older grove-sdk)",
        },
    );
    let saved = match state_dir {
        Some(dir) => match read_saved_state(dir, &header.module_name) {
            Ok(saved) => saved,
            Err(e) => {
                row(&mut out, "snapshot", format!("unusable: {e}"));
                None
            }
        },
        None => None,
    };
    let inspection = inspect_library(library, saved.as_ref())?;
    row(
        &mut out,
        "state",
        format!(
            "version {}, schema {:016x}; its default is {} bytes by field name",
            header.state_version.map_or_else(
                || "unknown (an older grove-sdk)".to_owned(),
                |v| v.to_string()
            ),
            inspection.schema_fingerprint,
            inspection.default_state_bytes
        ),
    );
    let Some(saved) = saved else {
        row(
            &mut out,
            "snapshot",
            match state_dir {
                Some(dir) => format!("none in {}: nothing to carry over", dir.display()),
                None => "no state directory: nothing to carry over".to_owned(),
            },
        );
        return Ok(out);
    };
    row(
        &mut out,
        "snapshot",
        format!(
            "{}: {} bytes, saved {} ago by generation {} (state version {}, grove-sdk {})",
            saved.path.display(),
            saved.state.len(),
            age(saved.age),
            saved.generation,
            saved.state_version,
            saved.sdk_version
        ),
    );
    if saved.type_name != header.type_name {
        row(
            &mut out,
            "",
            format!(
                "it was saved by type {}, this build's is {}",
                saved.type_name, header.type_name
            ),
        );
    }
    let same = saved.schema_fingerprint == inspection.schema_fingerprint;
    row(
        &mut out,
        "",
        if same {
            "same schema as this build: it is read positionally (the fast path)"
        } else {
            "the schema changed since it was saved: it is read by field name"
        },
    );
    match inspection.restore {
        Some(Ok(fields)) => {
            row(&mut out, "", "it loads into this build ✓");
            row(
                &mut out,
                "fields",
                fields.map_or_else(
                    || "no field report (the module's grove-sdk predates it)".to_owned(),
                    |report| report.to_string(),
                ),
            );
            Ok(out)
        }
        Some(Err(e)) => Err(Error::CheckFailed(format!(
            "{out}\nthe saved state would not load into this build (the running version \
             would keep running; a restart would start from the default state and set the \
             snapshot aside): {e}"
        ))),
        None => Ok(out),
    }
}

fn age(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min", s / 60),
        3600..86400 => format!("{} h", s / 3600),
        _ => format!("{} days", s / 86400),
    }
}
