//! The `cargo grove` command line. Cargo runs `cargo-grove grove <args>` for
//! `cargo grove <args>`.

use std::path::PathBuf;
use std::process::ExitCode;

use cargo_grove::new::GroveSource;
use cargo_grove::run::RunOptions;
use clap::{Args, Parser, Subcommand};
use grove_runtime::BuildOptions;

#[derive(Debug, Parser)]
#[command(name = "cargo", bin_name = "cargo")]
enum Cargo {
    /// Start, run and check grove hot-reload projects.
    #[command(version, about, long_about = None)]
    Grove(Grove),
}

#[derive(Debug, Args)]
struct Grove {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create a project: a host and a module crate, a config file and a state directory.
    New {
        /// The project's directory; its last component names it.
        path: PathBuf,
        /// Name the project this instead.
        #[arg(long)]
        name: Option<String>,
        /// Depend on the grove checkout at this path (default: the checkout this
        /// cargo-grove was installed from, if it is still there; else crates.io).
        #[arg(long, value_name = "DIR", conflicts_with = "crates_io")]
        grove_path: Option<PathBuf>,
        /// Depend on grove's crates.io versions.
        #[arg(long)]
        crates_io: bool,
    },
    /// Build, run and hot-reload module crates with a live dashboard (plain lines when
    /// stdout is not a terminal).
    Run {
        /// Module crates: package names of the workspace, or directories. Default: every
        /// module crate of the workspace.
        crates: Vec<String>,
        #[command(flatten)]
        build: BuildArgs,
        /// Frames per second (0: as fast as the modules run).
        #[arg(long, default_value_t = grove_runtime::DEFAULT_FPS, value_parser = frame_rate)]
        fps: f64,
        /// Where module states are kept between runs (default: the workspace's
        /// `[workspace.metadata.grove] state-dir`, else target/grove-state).
        #[arg(long, value_name = "DIR", conflicts_with = "no_state")]
        state_dir: Option<PathBuf>,
        /// Keep no state between runs.
        #[arg(long)]
        no_state: bool,
        /// Print plain lines even on a terminal.
        #[arg(long)]
        plain: bool,
        /// Stop after this many frames.
        #[arg(long, value_name = "N")]
        frames: Option<u64>,
    },
    /// Build a module crate and report what the loader would: ABI, panic strategy, module
    /// name, state schema, and whether its saved state would carry over.
    Check {
        /// The module crate: a package name of the workspace, or a directory. Default:
        /// every module crate of the workspace.
        crates: Vec<String>,
        #[command(flatten)]
        build: BuildArgs,
        /// The state directory holding the module's snapshot (default: as for `run`).
        #[arg(long, value_name = "DIR")]
        state_dir: Option<PathBuf>,
    },
}

#[derive(Debug, Args)]
struct BuildArgs {
    /// The workspace's Cargo.toml.
    #[arg(long, value_name = "PATH")]
    manifest_path: Option<PathBuf>,
    /// Build with --release.
    #[arg(long)]
    release: bool,
    /// Features to build the module crates with.
    #[arg(long, short = 'F', value_delimiter = ',')]
    features: Vec<String>,
}

impl BuildArgs {
    fn options(&self) -> BuildOptions {
        BuildOptions {
            release: self.release,
            features: self.features.clone(),
            ..BuildOptions::default()
        }
    }
}

/// A frame rate: a finite number, 0 or more.
fn frame_rate(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(fps) if fps.is_finite() && fps >= 0.0 => Ok(fps),
        _ => Err(format!(
            "`{text}` is not a frame rate: give frames per second, like 60 or 144 (0 runs \
             frames as fast as the modules go)"
        )),
    }
}

fn main() -> ExitCode {
    let Cargo::Grove(grove) = Cargo::parse();
    match run(grove.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(command: Command) -> cargo_grove::Result<()> {
    match command {
        Command::New {
            path,
            name,
            grove_path,
            crates_io,
        } => {
            let source = match (grove_path, crates_io) {
                (Some(root), _) => GroveSource::checkout(&root)?,
                (None, true) => GroveSource::CratesIo(env!("CARGO_PKG_VERSION").to_owned()),
                (None, false) => GroveSource::default_for_this_build(),
            };
            let project = cargo_grove::new::create(&path, name.as_deref(), &source)?;
            println!(
                "created project `{}` in {} (grove from {source})",
                project.name,
                project.dir.display()
            );
            println!("  cd {}", path.display());
            println!(
                "  cargo grove run   # the dashboard: edit modules/{}/src/lib.rs and save",
                project.name
            );
            println!("  cargo run         # the host in src/main.rs, plain lines");
            Ok(())
        }
        Command::Run {
            crates,
            build,
            fps,
            state_dir,
            no_state,
            plain,
            frames,
        } => cargo_grove::run::run(RunOptions {
            crates,
            manifest_path: build.manifest_path.clone(),
            release: build.release,
            features: build.features.clone(),
            fps: Some(fps),
            state_dir,
            no_state,
            plain,
            frames,
        }),
        Command::Check {
            crates,
            build,
            state_dir,
        } => {
            let project = cargo_grove::project::discover(build.manifest_path.as_deref(), &crates)?;
            let state_dir = state_dir.unwrap_or(project.state_dir);
            let mut failed = Vec::new();
            for module in &project.modules {
                println!("== {} ({})", module.package, module.dir.display());
                match cargo_grove::check::check(&module.dir, build.options(), Some(&state_dir)) {
                    Ok(report) => print!("{report}"),
                    // Printed once, here, with its report; the error that ends the command
                    // only names the crates.
                    Err(e) => {
                        eprintln!("{e}");
                        failed.push(module.package.as_str());
                    }
                }
            }
            if failed.is_empty() {
                Ok(())
            } else {
                Err(cargo_grove::Error::CheckFailed(format!(
                    "{} would not load (the reason is above)",
                    failed.join(", ")
                )))
            }
        }
    }
}
