//! `cargo grove` as a person uses it: `new`, then `run` in a real terminal (a pseudoterminal
//! of the test's own, read through a terminal emulator), an edit that reloads, a key that
//! unloads, `q` that quits and restores the terminal; `run` without a terminal, `check`,
//! and `cargo run` of the host `new` wrote.
//!
//! The projects depend on this checkout and share one target directory, so the module's
//! dependencies are compiled once per test run.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn cargo_grove() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_cargo-grove"));
    command.arg("grove").env("CARGO_TARGET_DIR", target_dir());
    command
}

fn target_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("e2e-target")
}

fn checkout() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A new empty directory under the test target directory.
fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("e2e")
        .join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn text(output: &Output) -> String {
    format!(
        "status {}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// `cargo grove new <name>` in `dir`, on this checkout.
fn new_project(dir: &Path, name: &str) -> PathBuf {
    let output = cargo_grove()
        .current_dir(dir)
        .args(["new", name, "--grove-path"])
        .arg(checkout())
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output));
    let project = dir.join(name);
    for file in [
        "Cargo.toml",
        "Cargo.lock",
        "src/main.rs",
        &format!("modules/{name}/Cargo.toml"),
        &format!("modules/{name}/config.toml"),
        &format!("modules/{name}/src/lib.rs"),
    ] {
        assert!(project.join(file).is_file(), "{file} was not written");
    }
    assert!(project.join("state").is_dir());
    project
}

/// Saves `file` with `from` replaced by `to`, as editors that save atomically do.
fn edit(file: &Path, from: &str, to: &str) {
    let source = std::fs::read_to_string(file).unwrap();
    assert!(
        source.contains(from),
        "{from:?} is not in {}",
        file.display()
    );
    let tmp = file.with_extension("rs.tmp");
    std::fs::write(&tmp, source.replace(from, to)).unwrap();
    std::fs::rename(tmp, file).unwrap();
}

/// A program running on a pseudoterminal of the test's own, 150 columns by 48 rows, its
/// output read into a terminal emulator: the screen a person would see.
struct Terminal {
    child: std::process::Child,
    /// The terminal's side of the pseudoterminal: keys are written to it.
    input: std::fs::File,
    screen: std::sync::Arc<std::sync::Mutex<vt100::Parser>>,
}

impl Terminal {
    const ROWS: u16 = 48;
    const COLUMNS: u16 = 150;

    fn start(mut command: Command) -> Self {
        use rustix::pty::{OpenptFlags, grantpt, ioctl_tiocgptpeer, openpt, unlockpt};
        let flags = OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC;
        let controller = openpt(flags).expect("a pseudoterminal opens");
        grantpt(&controller).unwrap();
        unlockpt(&controller).unwrap();
        let user = ioctl_tiocgptpeer(&controller, flags).unwrap();
        rustix::termios::tcsetwinsize(
            &user,
            rustix::termios::Winsize {
                ws_row: Self::ROWS,
                ws_col: Self::COLUMNS,
                ws_xpixel: 0,
                ws_ypixel: 0,
            },
        )
        .unwrap();
        let child = command
            .stdin(user.try_clone().unwrap())
            .stdout(user.try_clone().unwrap())
            .stderr(user)
            .spawn()
            .expect("cargo grove starts");
        // The command keeps the program's ends open: gone, the reader sees the end when
        // the program exits.
        drop(command);
        let screen = std::sync::Arc::new(std::sync::Mutex::new(vt100::Parser::new(
            Self::ROWS,
            Self::COLUMNS,
            0,
        )));
        let input = std::fs::File::from(controller);
        let mut output = input.try_clone().unwrap();
        let parser = std::sync::Arc::clone(&screen);
        std::thread::spawn(move || {
            use std::io::Read;
            let mut buf = [0u8; 8192];
            // Ends with EIO once no process has the terminal open.
            while let Ok(n @ 1..) = output.read(&mut buf) {
                parser.lock().unwrap().process(&buf[..n]);
            }
        });
        Self {
            child,
            input,
            screen,
        }
    }

    fn screen(&self) -> String {
        self.screen.lock().unwrap().screen().contents()
    }

    fn keys(&mut self, keys: &str) {
        use std::io::Write;
        self.input.write_all(keys.as_bytes()).unwrap();
    }

    fn wait_for(&self, what: &str, limit: Duration, done: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + limit;
        loop {
            let screen = self.screen();
            if done(&screen) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; the screen:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits for the program to exit; its status, and whether it left the alternate screen.
    fn wait_for_exit(&mut self, limit: Duration) -> (std::process::ExitStatus, bool) {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                // What it wrote last may still be on its way through the reader.
                std::thread::sleep(Duration::from_millis(200));
                let restored = !self.screen.lock().unwrap().screen().alternate_screen();
                return (status, restored);
            }
            assert!(
                Instant::now() < deadline,
                "the program did not exit; the screen:\n{}",
                self.screen()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The first builds compile grove-sdk and its dependencies: minutes on a slow machine.
const FIRST_BUILD: Duration = Duration::from_secs(900);

#[test]
fn new_then_run_shows_a_live_dashboard_that_reloads_on_save_unloads_and_quits() {
    let project = new_project(&scratch("dashboard"), "demo");
    let mut run = cargo_grove();
    run.current_dir(&project).arg("run");
    let mut terminal = Terminal::start(run);
    let screen = terminal.wait_for("the dashboard", FIRST_BUILD, |s| {
        s.contains("grove · demo")
            && s.lines()
                .any(|l| l.starts_with("│demo ") && l.contains("healthy"))
    });
    assert!(screen.contains("running"), "{screen}");
    assert!(
        screen.contains(r#"config: {"greeting":"Hello from demo!","speed":1.0}"#),
        "the config the manifest names is in force:\n{screen}"
    );

    edit(
        &project.join("modules/demo/src/lib.rs"),
        "self.frames += 1;",
        "self.frames += 2;",
    );
    let screen = terminal.wait_for("the reload", Duration::from_secs(300), |s| {
        s.contains("reloaded → gen 2")
    });
    assert!(
        screen.contains("positional"),
        "the same state type carries over field by field:\n{screen}"
    );

    terminal.keys("u");
    terminal.wait_for("the unload", Duration::from_secs(30), |s| {
        s.lines()
            .any(|l| l.starts_with("│demo ") && l.contains("unloaded"))
    });

    terminal.keys("q");
    let (status, restored) = terminal.wait_for_exit(Duration::from_secs(60));
    assert!(status.success(), "{status}");
    assert!(restored, "the terminal left the alternate screen");
    assert!(
        project.join("state/demo.snapshot").is_file(),
        "the state was kept for the next run"
    );
}

#[test]
fn without_a_terminal_run_prints_lines_check_reports_and_the_host_runs() {
    let project = new_project(&scratch("plain"), "plain-demo");
    let output = cargo_grove()
        .current_dir(&project)
        .args(["run", "--frames", "30"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let all = text(&output);
    assert!(output.status.success(), "{all}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("frame 30 |") && l.contains("plain_demo gen 1 healthy")),
        "{all}"
    );
    assert!(
        all.contains("configured from") && all.contains("config.toml"),
        "{all}"
    );

    let output = cargo_grove()
        .current_dir(&project)
        .arg("check")
        .output()
        .unwrap();
    let all = text(&output);
    assert!(output.status.success(), "{all}");
    for line in [
        "module      plain_demo (type PlainDemo)",
        "panic       unwind",
        "it loads into this build ✓",
        "fields      every field read as it was",
    ] {
        assert!(all.contains(line), "{line:?} missing:\n{all}");
    }

    // The host `new` wrote: `cargo run` works at once, and stops cleanly on Ctrl-C.
    let mut host = Command::new(env!("CARGO"))
        .current_dir(&project)
        .args(["run", "--quiet"])
        .env("CARGO_TARGET_DIR", target_dir())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = host.stdout.take().unwrap();
    let started = std::thread::spawn(move || {
        use std::io::BufRead;
        std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .find(|l| l.starts_with("running `plain_demo`"))
    });
    let deadline = Instant::now() + FIRST_BUILD;
    while !started.is_finished() {
        assert!(Instant::now() < deadline, "the host never started");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(started.join().unwrap().is_some(), "the host said nothing");
    std::thread::sleep(Duration::from_millis(500));
    // Ctrl-C reaches the host through cargo, which waits for it.
    let host_exe = target_dir().join("debug/plain-demo");
    let pid = process_running(&host_exe).expect("the host process was not found");
    rustix::process::kill_process(pid, rustix::process::Signal::INT).unwrap();
    let output = host.wait_with_output().unwrap();
    let all = text(&output);
    assert!(output.status.success(), "{all}");
    assert!(all.contains("shutting modules down"), "{all}");
}

#[test]
fn a_module_that_does_not_compile_yet_is_waited_for_not_fatal() {
    let project = new_project(&scratch("broken"), "broken");
    let source = project.join("modules/broken/src/lib.rs");
    edit(&source, "self.frames += 1;", "self.frames += 1 +;");
    let stderr_file = project.join("stderr.txt");
    let mut run = cargo_grove()
        .current_dir(&project)
        .args(["run", "--frames", "30"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&stderr_file).unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + FIRST_BUILD;
    while !std::fs::read_to_string(&stderr_file)
        .unwrap()
        .contains("does not compile yet: fix it and save")
    {
        assert!(
            run.try_wait().unwrap().is_none(),
            "cargo grove run ended on a compile error:\n{}",
            std::fs::read_to_string(&stderr_file).unwrap()
        );
        assert!(Instant::now() < deadline, "no compile error reported");
        std::thread::sleep(Duration::from_millis(100));
    }
    let stderr = std::fs::read_to_string(&stderr_file).unwrap();
    assert!(
        stderr.contains("expected expression") && stderr.contains("src/lib.rs:"),
        "the compiler's message, with its place:\n{stderr}"
    );
    edit(&source, "self.frames += 1 +;", "self.frames += 1;");
    let output = run.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("frame 30 |") && l.contains("broken gen 1")),
        "{stdout}"
    );
}

/// A process running the executable `exe` (its first argument), from `/proc`.
fn process_running(exe: &Path) -> Option<rustix::process::Pid> {
    std::fs::read_dir("/proc")
        .ok()?
        .flatten()
        .find_map(|entry| {
            let pid = entry.file_name().to_str()?.parse::<i32>().ok()?;
            let cmdline = std::fs::read(entry.path().join("cmdline")).ok()?;
            let argv0 = cmdline.split(|&b| b == 0).next()?;
            (Path::new(std::str::from_utf8(argv0).ok()?) == exe)
                .then(|| rustix::process::Pid::from_raw(pid))
                .flatten()
        })
}

/// Copies the directory `from` to `to` (which must not exist), files and directories only.
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// Waits until `file` contains `what`, while `child` runs.
fn wait_for_line(child: &mut std::process::Child, file: &Path, what: &str, limit: Duration) {
    let deadline = Instant::now() + limit;
    while !std::fs::read_to_string(file).unwrap().contains(what) {
        assert!(
            child.try_wait().unwrap().is_none(),
            "cargo grove run ended before saying {what:?}:\n{}",
            std::fs::read_to_string(file).unwrap()
        );
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what:?}:\n{}",
            std::fs::read_to_string(file).unwrap()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_module_that_panics_in_init_at_start_is_shown_failed_and_loads_once_fixed() {
    let scratch = scratch("init-panic");
    let project = new_project(&scratch, "steady");
    // A second module crate in the same workspace, whose `init` panics.
    let other = new_project(&scratch, "shaky");
    copy_dir(&other.join("modules/shaky"), &project.join("modules/shaky"));
    let source = project.join("modules/shaky/src/lib.rs");
    edit(
        &source,
        r#"grove::tracing::info!(frames = self.frames, "shaky ready");"#,
        r#"panic!("shaky is not ready");"#,
    );
    let stdout_file = project.join("stdout.txt");
    let stderr_file = project.join("stderr.txt");
    let mut run = cargo_grove()
        .current_dir(&project)
        .args(["run", "--frames", "600"])
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&stdout_file).unwrap())
        .stderr(std::fs::File::create(&stderr_file).unwrap())
        .spawn()
        .unwrap();
    wait_for_line(&mut run, &stderr_file, "`shaky` did not load", FIRST_BUILD);
    let stderr = std::fs::read_to_string(&stderr_file).unwrap();
    assert!(
        stderr.contains("module `shaky` panicked in init") && stderr.contains("shaky is not ready"),
        "the panic, with its message:\n{stderr}"
    );
    // The other module runs meanwhile, and the status line says why shaky does not.
    wait_for_line(
        &mut run,
        &stdout_file,
        "shaky not loaded: module `shaky` panicked in init",
        Duration::from_secs(60),
    );
    let stdout = std::fs::read_to_string(&stdout_file).unwrap();
    assert!(
        stdout.lines().any(|l| l.contains("steady gen 1 healthy")
            && l.contains("shaky not loaded: module `shaky` panicked in init")),
        "{stdout}"
    );
    edit(
        &source,
        r#"panic!("shaky is not ready");"#,
        r#"grove::tracing::info!(frames = self.frames, "shaky ready");"#,
    );
    let status = run.wait().unwrap();
    let stdout = std::fs::read_to_string(&stdout_file).unwrap();
    let stderr = std::fs::read_to_string(&stderr_file).unwrap();
    let all = format!("stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(status.success(), "{all}");
    assert!(stderr.contains("`shaky` loaded from"), "{all}");
    assert!(
        stdout.lines().any(|l| l.starts_with("frame 600 |")
            && l.contains("steady gen 1 healthy")
            && l.contains("shaky gen 1 healthy")),
        "the fix was loaded:\n{all}"
    );
}

#[test]
fn an_error_exit_is_a_clean_end_not_a_crash_at_the_next_run() {
    let scratch = scratch("error-exit");
    let project = new_project(&scratch, "tidy");
    // A crate that is not a module crate, outside the workspace: building it for loading
    // fails, before any module is loaded.
    let library = scratch.join("plainlib");
    std::fs::create_dir_all(library.join("src")).unwrap();
    std::fs::write(
        library.join("Cargo.toml"),
        "[package]\nname = \"plainlib\"\nversion = \"0.1.0\"\nedition = \"2024\"\n\n[workspace]\n",
    )
    .unwrap();
    std::fs::write(library.join("src/lib.rs"), "pub fn nothing() {}\n").unwrap();
    let output = cargo_grove()
        .current_dir(&project)
        .arg("run")
        .arg(&library)
        .args(["tidy-module", "--frames", "5"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!output.status.success(), "{}", text(&output));
    assert!(
        !project.join("state/running").exists(),
        "the run marker was left behind:\n{}",
        text(&output)
    );

    let output = cargo_grove()
        .current_dir(&project)
        .args(["run", "--frames", "5"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let all = text(&output);
    assert!(output.status.success(), "{all}");
    assert!(
        !all.contains("previous run"),
        "a false crash notice:\n{all}"
    );
}

#[test]
fn crate_directories_run_outside_any_cargo_project() {
    let scratch = scratch("outside");
    let far = new_project(&scratch, "far");
    let near = new_project(&scratch, "near");
    // A working directory in no cargo project (the test's target directory is in one).
    let outside = std::env::temp_dir().join(format!("grove-e2e-outside-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&outside);
    std::fs::create_dir_all(&outside).unwrap();
    let run = |dirs: &[&Path]| {
        let output = cargo_grove()
            .current_dir(&outside)
            .arg("run")
            .args(dirs)
            .args(["--frames", "5"])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let all = text(&output);
        assert!(output.status.success(), "{all}");
        all
    };

    // Both run; their states go to the first one's workspace `state-dir`.
    let all = run(&[&far.join("modules/far"), &near.join("modules/near")]);
    assert!(
        all.lines().any(|l| l.starts_with("frame 5 |")
            && l.contains("far gen 1")
            && l.contains("near gen 1")),
        "{all}"
    );
    let state = far.join("state");
    assert!(
        all.contains(&format!("states are kept in {}", state.display())),
        "{all}"
    );
    assert!(state.join("far.snapshot").is_file(), "{all}");
    assert!(state.join("near.snapshot").is_file(), "{all}");
    assert!(!near.join("state/near.snapshot").exists(), "{all}");

    // A workspace that sets no state directory: the one `cargo grove run` inside it uses.
    let manifest = far.join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(&manifest, text.replace("state-dir = \"state\"", "")).unwrap();
    let all = run(&[&far.join("modules/far")]);
    let default = target_dir().join("grove-state");
    assert!(
        all.contains(&format!("states are kept in {}", default.display())),
        "{all}"
    );
    assert!(default.join("far.snapshot").is_file(), "{all}");
    let _ = std::fs::remove_dir_all(&outside);
}
