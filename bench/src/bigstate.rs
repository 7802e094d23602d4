//! Big states carried across a reload (issue 10, item 7): the benchmark module holding 1,
//! 16 and 200 MiB, built in release and in debug, reloaded; against copying the same
//! bytes and against loading new code, in the same run. Peak memory is read in a child
//! process per size, so that no earlier measurement's heap is reused.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use grove_runtime::Staging;

use crate::{floor_load, frame, loaded_with_state, median, workspace_root};

/// The benchmark module built without `--release`, as a module is while it is developed.
#[derive(Debug, Clone)]
pub struct DebugModules {
    /// A plain `cargo build`: the workspace's dev profile, grove-sdk at opt-level 1 (which
    /// shares its codec instances with the unoptimised module: `grove-sdk/src/prebuilt.rs`).
    pub debug: PathBuf,
    /// The same with grove-sdk at the dev profile's own opt-level 0: what a module crate
    /// gets without that setting.
    pub debug_sdk_unoptimised: PathBuf,
}

/// Builds the benchmark module in debug, twice (see [`DebugModules`]).
pub fn build_debug_modules() -> DebugModules {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = workspace_root().join("target/grove-bench/out");
    std::fs::create_dir_all(&out).unwrap();
    let build = |target: &str, extra: &[&str], name: &str| {
        let target = workspace_root().join("target").join(target);
        let status = Command::new(&cargo)
            .current_dir(workspace_root())
            .args([
                "build",
                "--quiet",
                "-p",
                "grove-bench-module",
                "--target-dir",
            ])
            .arg(&target)
            .args(extra)
            .status()
            .expect("cargo runs");
        assert!(status.success(), "debug fixture build failed");
        let copy = out.join(format!("libbench-{name}.so"));
        std::fs::copy(target.join("debug/libbench_module.so"), &copy).unwrap();
        copy
    };
    DebugModules {
        debug: build("grove-bench", &[], "debug"),
        debug_sdk_unoptimised: build(
            "grove-bench-sdk-o0",
            &["--config", "profile.dev.package.grove-sdk.opt-level=0"],
            "debug-sdk-o0",
        ),
    }
}

/// One state size reloaded, with its floors from the same run.
#[derive(Debug, Clone)]
pub struct BigStateFigures {
    /// State carried over.
    pub state_bytes: usize,
    /// Median of stage -> load new -> save -> restore -> init (`Reloaded::took`).
    pub swap: Duration,
    /// Median copy of the state's bytes into a fresh buffer (allocation and page faults
    /// included, as the reload's buffers have them).
    pub memcpy: Duration,
    /// Median copy + dlopen + dlsym of the library.
    pub floor_load: Duration,
    /// Reloads timed.
    pub samples: usize,
}

impl BigStateFigures {
    /// MiB of state carried per second of the reload call.
    pub fn mib_per_s(&self) -> f64 {
        self.state_bytes as f64 / (1 << 20) as f64 / self.swap.as_secs_f64()
    }

    /// The floor: copying the state and loading the code.
    pub fn floor(&self) -> Duration {
        self.memcpy + self.floor_load
    }
}

/// Times `samples` reloads (after one untimed) of `library` carrying `state_bytes`,
/// interleaved with the floors.
pub fn big_state_reload(library: &Path, state_bytes: usize, samples: usize) -> BigStateFigures {
    let staging = Arc::new(Staging::new().unwrap());
    let dir = staging.path().to_owned();
    let mut module = loaded_with_state(library, state_bytes, &staging);
    let source: Vec<u8> = (0..state_bytes).map(|i| i as u8).collect();
    let (mut swaps, mut copies, mut loads) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..=samples {
        let reloaded = module.reload(library, &frame(i as u64)).unwrap();
        assert!(
            reloaded.state_bytes >= state_bytes,
            "the state was carried over"
        );
        let started = Instant::now();
        let copy = std::hint::black_box(source.to_vec());
        let memcpy = started.elapsed();
        drop(copy);
        let floor = floor_load(library, &dir, i);
        if i > 0 {
            swaps.push(reloaded.took);
            copies.push(memcpy);
            loads.push(floor.load);
        }
    }
    BigStateFigures {
        state_bytes,
        swap: median(&mut swaps),
        memcpy: median(&mut copies),
        floor_load: median(&mut loads),
        samples,
    }
}

/// Memory during one reload, read from `/proc/self/status` in a process of its own.
#[derive(Debug, Clone, Copy)]
pub struct PeakFigures {
    /// State carried over.
    pub state_bytes: usize,
    /// Resident memory with the module loaded and its state built, before the reload.
    pub before: u64,
    /// The most resident during the reload (`VmHWM`, reset just before it).
    pub peak: u64,
}

impl PeakFigures {
    /// What the reload added at its peak, in bytes.
    pub fn added(&self) -> u64 {
        self.peak.saturating_sub(self.before)
    }

    /// What the reload added at its peak beyond what a reload without state adds (`empty`:
    /// the new library's pages, the staging copy's), in states: the new state and the
    /// encoded one.
    pub fn over_running(&self, empty: &PeakFigures) -> f64 {
        self.added().saturating_sub(empty.added()) as f64 / self.state_bytes as f64
    }

    /// The peak memory of state (the running one included), in states.
    pub fn of_state(&self, empty: &PeakFigures) -> f64 {
        self.over_running(empty) + 1.0
    }
}

/// The argument that makes the benchmark binary run [`peak_child`] and exit.
pub const PEAK_CHILD_ARG: &str = "--bigstate-peak-child";

/// Runs one reload of `library` carrying `state_bytes` in a child process (the benchmark
/// binary, with [`PEAK_CHILD_ARG`]) and reads its memory.
pub fn peak(library: &Path, state_bytes: usize) -> PeakFigures {
    let output = Command::new(std::env::current_exe().unwrap())
        .arg(PEAK_CHILD_ARG)
        .arg(library)
        .arg(state_bytes.to_string())
        .output()
        .expect("the benchmark binary runs");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "peak child failed: {text}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let mut numbers = text.split_whitespace().map(|n| n.parse::<u64>().unwrap());
    PeakFigures {
        state_bytes,
        before: numbers.next().unwrap(),
        peak: numbers.next().unwrap(),
    }
}

/// The child's side of [`peak`]: prints the resident bytes before the reload and the
/// peak during it.
pub fn peak_child(library: &Path, state_bytes: usize) {
    let staging = Arc::new(Staging::new().unwrap());
    let mut module = loaded_with_state(library, state_bytes, &staging);
    let before = status_bytes("VmRSS");
    // Resets VmHWM to the current resident size (Linux 4.0 and later).
    std::fs::write("/proc/self/clear_refs", "5").expect("VmHWM can be reset");
    let reloaded = module.reload(library, &frame(1)).unwrap();
    let peak = status_bytes("VmHWM");
    assert!(reloaded.state_bytes >= state_bytes);
    println!("{before} {peak}");
}

/// A `kB` line of `/proc/self/status`, in bytes.
fn status_bytes(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .unwrap_or_else(|| panic!("no {field} in /proc/self/status"));
    let kb: u64 = line.trim().trim_end_matches("kB").trim().parse().unwrap();
    kb * 1024
}
