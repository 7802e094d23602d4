//! Building the fixture libraries, once per test run, and reading module state.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use serde::Deserialize;

/// The variants of tests/fixtures/counter that the tests use, by cargo feature ("" is the
/// default version).
const COUNTER_VARIANTS: &[&str] = &[
    "",
    "v2",
    "game",
    "game_v2",
    "game_added",
    "added",
    "removed",
    "reordered",
    "widened",
    "incompatible",
    "floats",
    "narrowed",
    "aliased",
    "renamed",
    "other_type",
    "versioned",
    "migrate_fails",
    "string_count",
    "panic_create",
    "panic_init",
    "panic_process",
    "panic_save",
    "panic_load",
    "panic_shutdown",
    "panic_destroy",
    "chaos",
    "pin_tls",
];

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

/// Where fixture builds go: their own target dir, so building them never waits on the
/// lock of the `cargo test` that runs us, and stays incremental across runs.
/// `GROVE_FIXTURE_TARGET_DIR` (an absolute path) puts them elsewhere: scripts/asan.sh
/// builds them with another toolchain, whose builds must not replace the usual ones.
pub fn fixture_target_dir() -> PathBuf {
    match std::env::var_os("GROVE_FIXTURE_TARGET_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => workspace_root().join("target").join("grove-fixtures"),
    }
}

/// Builds every variant of the fixture package `package` (library `lib`), one cargo run
/// each, and copies each library to `out/lib<lib>-<variant>.so`. A variant is a cargo
/// feature ("" is the default version, named `v1`); `panic_abort` is the default version
/// built with `panic = "abort"`, in a target dir of its own (every crate of the build
/// changes with the profile).
fn build_variants(
    package: &str,
    lib: &str,
    variants: &[&'static str],
) -> HashMap<&'static str, PathBuf> {
    let target = fixture_target_dir();
    let out = target.join("out");
    std::fs::create_dir_all(&out).unwrap();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    variants
        .iter()
        .map(|&variant| {
            let name = if variant.is_empty() { "v1" } else { variant };
            let copy = out.join(format!("lib{lib}-{name}.so"));
            // A child process uses what its parent built: building again would rewrite the
            // libraries other processes are loading.
            if is_child() {
                return (name, copy);
            }
            let mut cmd = Command::new(&cargo);
            cmd.current_dir(workspace_root()).args([
                "build",
                "--quiet",
                "-p",
                package,
                // As grove builds a watched crate in development (`DevProfile`): the
                // crates of `watch_crate`'s tests, built in the same target dir, share
                // the dependencies built here.
                "--config",
                "profile.dev.debug=\"line-tables-only\"",
                "--target-dir",
            ]);
            let built_in = if variant == "panic_abort" {
                cmd.arg(target.join("abort"))
                    .args(["--config", "profile.dev.panic=\"abort\""]);
                target.join("abort")
            } else {
                cmd.arg(&target);
                if !variant.is_empty() {
                    cmd.args(["--features", variant]);
                }
                target.clone()
            };
            let status = cmd.status().expect("cargo runs");
            assert!(status.success(), "building {package} ({variant:?}) failed");
            std::fs::copy(built_in.join("debug").join(format!("lib{lib}.so")), &copy).unwrap();
            (name, copy)
        })
        .collect()
}

/// The variants of tests/fixtures/rogue (see [`build_variants`]).
const ROGUE_VARIANTS: &[&str] = &[
    "",
    "old_tables",
    "prev_tables",
    "no_report",
    "no_save_into",
    "new_tables",
    "other_module",
    "undefined_symbol",
    "panic_abort",
];

/// The library of the rogue fixture built as `variant` ("v1" for the default).
pub fn rogue(variant: &str) -> PathBuf {
    static BUILT: OnceLock<HashMap<&'static str, PathBuf>> = OnceLock::new();
    BUILT
        .get_or_init(|| build_variants("rogue-fixture", "rogue", ROGUE_VARIANTS))
        .get(variant)
        .unwrap_or_else(|| panic!("no rogue fixture variant {variant:?}"))
        .clone()
}

/// The variants of tests/fixtures/tuned (see [`build_variants`]).
const TUNED_VARIANTS: &[&str] = &["", "changed", "no_config"];

/// The library of the tuned fixture (a config and a health report) built as `variant`
/// ("v1" for the default).
pub fn tuned(variant: &str) -> PathBuf {
    static BUILT: OnceLock<HashMap<&'static str, PathBuf>> = OnceLock::new();
    BUILT
        .get_or_init(|| build_variants("tuned-fixture", "tuned", TUNED_VARIANTS))
        .get(variant)
        .unwrap_or_else(|| panic!("no tuned fixture variant {variant:?}"))
        .clone()
}

/// The variants of tests/fixtures/chatter (see [`build_variants`]).
const CHATTER_VARIANTS: &[&str] = &["", "consumer", "changed", "consumer,changed"];

/// The library of the chatter fixture (publishes and subscribes as configured) built as
/// `variant`: "v1" (the module `producer`), "consumer", "changed" (`producer` with another
/// `Tick`), "consumer,changed".
pub fn chatter(variant: &str) -> PathBuf {
    static BUILT: OnceLock<HashMap<&'static str, PathBuf>> = OnceLock::new();
    BUILT
        .get_or_init(|| build_variants("chatter-fixture", "chatter", CHATTER_VARIANTS))
        .get(variant)
        .unwrap_or_else(|| panic!("no chatter fixture variant {variant:?}"))
        .clone()
}

/// The library of the many fixture (tests/fixtures/many), built with `--release` (small:
/// hundreds of copies are loaded at once), as `variant`: "v1" or "v2".
pub fn many(variant: &str) -> PathBuf {
    static BUILT: OnceLock<HashMap<&'static str, PathBuf>> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let target = fixture_target_dir();
            let out = target.join("out");
            std::fs::create_dir_all(&out).unwrap();
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            [("v1", None), ("v2", Some("v2"))]
                .into_iter()
                .map(|(name, feature)| {
                    let copy = out.join(format!("libmany-{name}.so"));
                    if is_child() {
                        return (name, copy);
                    }
                    let mut cmd = Command::new(&cargo);
                    cmd.current_dir(workspace_root())
                        .args(["build", "--quiet", "--release", "-p", "many-fixture"])
                        .arg("--target-dir")
                        .arg(&target);
                    if let Some(feature) = feature {
                        cmd.args(["--features", feature]);
                    }
                    let status = cmd.status().expect("cargo runs");
                    assert!(status.success(), "building many-fixture ({name}) failed");
                    std::fs::copy(target.join("release/libmany.so"), &copy).unwrap();
                    (name, copy)
                })
                .collect()
        })
        .get(variant)
        .unwrap_or_else(|| panic!("no many fixture variant {variant:?}"))
        .clone()
}

/// The module name the many fixture is built with, replaced in each copy.
pub const MANY_PLACEHOLDER: &str = "many_000";

/// Copies of the many fixture's `variant`, each under a name of its own.
pub fn many_renamer(variant: &str) -> grove_runtime::bench_support::Renamer {
    grove_runtime::bench_support::Renamer::new(&many(variant), MANY_PLACEHOLDER).unwrap()
}

/// Entries of `/proc/self/<dir>`: open fds (`fd`), threads (`task`).
pub fn proc_entries(dir: &str) -> usize {
    std::fs::read_dir(Path::new("/proc/self").join(dir))
        .unwrap()
        .count()
}

/// Set in a child process started by [`run_child`].
const CHILD_ENV: &str = "GROVE_TEST_CHILD";

/// Whether this process is a child started by [`run_child`]. The child's side of a test is
/// an `#[ignore]`d test of its own, so this only guards against running it by hand.
pub fn is_child() -> bool {
    std::env::var_os(CHILD_ENV).is_some()
}

/// Runs the ignored test `name` (its full path, e.g. `boundary::child_segfault`) alone in a
/// new process of this test binary, with `env`, and returns what it did. For what cannot
/// happen in the test process: crashes, threads that never end, process-wide settings.
pub fn run_child(name: &str, env: &[(&str, &str)]) -> std::process::Output {
    // The child uses the fixtures as built here (see `build_variants`).
    let _ = (counter("v1"), rogue("v1"));
    let exe = std::env::current_exe().unwrap();
    let mut cmd = Command::new(exe);
    cmd.args([
        name,
        "--exact",
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ])
    .env(CHILD_ENV, "1")
    .env("RUST_BACKTRACE", "0");
    for (key, value) in env {
        cmd.env(key, value);
    }
    cmd.output().expect("the test binary runs")
}

/// Runs the child test `name` as [`run_child`] does and asserts that it exited successfully
/// and printed `expected` (the child's own summary, e.g. `CHILD OK kept=30`).
pub fn assert_child_ok(name: &str, env: &[(&str, &str)], expected: &str) {
    let out = run_child(name, env);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains(expected),
        "{name} {env:?}: {:?}\nstdout: {stdout}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The library of the counter fixture built with `variant` ("v1" for the default).
pub fn counter(variant: &str) -> PathBuf {
    static BUILT: OnceLock<HashMap<&'static str, PathBuf>> = OnceLock::new();
    BUILT
        .get_or_init(|| build_variants("counter-fixture", "counter", COUNTER_VARIANTS))
        .get(variant)
        .unwrap_or_else(|| panic!("no counter fixture variant {variant:?}"))
        .clone()
}

/// The counter's state as every variant writes it (by field name, missing fields default).
#[derive(Debug, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct CounterState {
    pub count: u64,
    pub total: u64,
    pub name: String,
    pub label: Vec<String>,
}

pub fn counter_state(module: &mut grove_runtime::LoadedModule) -> CounterState {
    let bytes = module.save_state().expect("state saves");
    rmp_serde::from_slice(&bytes).expect("state decodes")
}

/// A field report's renames as `(from, to, value kept)`.
pub fn renamed(report: &grove::state::FieldReport) -> Vec<(&str, &str, bool)> {
    report
        .renamed
        .iter()
        .map(|r| (r.from.as_str(), r.to.as_str(), r.kept))
        .collect()
}

/// A frame numbered `n`.
pub fn frame(n: u64) -> grove::abi::FrameInfo {
    grove::abi::FrameInfo {
        frame: n,
        delta_ns: 16_666_667,
        elapsed_ns: n * 16_666_667,
    }
}

/// A new empty directory for one test, under the fixture target dir.
pub fn scratch_dir() -> PathBuf {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    static SWEPT: std::sync::Once = std::sync::Once::new();
    let scratch = fixture_target_dir().join("scratch");
    SWEPT.call_once(|| remove_dead_scratch_dirs(&scratch));
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = scratch.join(format!("{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Removes the scratch directories (`<pid>-<n>`) of test processes that have ended: a test
/// that fails leaves its directory behind to look at, until the next run.
fn remove_dead_scratch_dirs(scratch: &Path) {
    let Ok(entries) = std::fs::read_dir(scratch) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let pid = name.to_str().and_then(|n| n.split('-').next());
        let alive = pid.is_some_and(|pid| Path::new("/proc").join(pid).exists());
        if !alive {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// A real shared library with no grove exports, built once with rustc directly.
pub fn plain_cdylib() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let dir = fixture_target_dir().join("plain");
            std::fs::create_dir_all(&dir).unwrap();
            let source = dir.join("plain.rs");
            std::fs::write(
                &source,
                "#[unsafe(no_mangle)]\npub extern \"C\" fn plain_answer() -> u32 { 42 }\n",
            )
            .unwrap();
            let out = dir.join("libplain.so");
            let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
            let status = Command::new(rustc)
                .args(["--edition", "2024", "--crate-type", "cdylib", "-o"])
                .arg(&out)
                .arg(&source)
                .status()
                .expect("rustc runs");
            assert!(status.success(), "building the plain cdylib failed");
            out
        })
        .clone()
}

/// Open file descriptors of this process that point into `dir`: what a leak of the
/// loader's would show, unaffected by the other tests running alongside.
pub fn open_fds_under(dir: &Path) -> usize {
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
        .filter(|target| target.starts_with(dir))
        .count()
}

/// An engine that runs frames as fast as it is stepped and does not watch files: the
/// tests drive reloads themselves.
pub fn unpaced_engine() -> grove_runtime::Engine {
    grove_runtime::Engine::builder()
        .target_fps(0.0)
        .watch_files(false)
        .build()
        .unwrap()
}

/// An engine at `fps` (0: unpaced) watching and running the v1 counter from a private
/// copy at `dir/libcounter.so`, with its event stream and the copy's path.
pub fn engine_on_copy(
    dir: &Path,
    fps: f64,
) -> (
    grove_runtime::Engine,
    std::sync::mpsc::Receiver<grove_runtime::EngineEvent>,
    PathBuf,
) {
    let path = dir.join("libcounter.so");
    std::fs::copy(counter("v1"), &path).unwrap();
    let mut engine = grove_runtime::Engine::builder()
        .target_fps(fps)
        .build()
        .unwrap();
    let events = engine.subscribe();
    engine.load_module(&path).unwrap();
    (engine, events, path)
}

/// A static module that does nothing.
#[derive(Debug, Default)]
pub struct Quick;

impl grove::Module for Quick {
    fn process(&mut self, _ctx: &mut grove::Context) {}
}
