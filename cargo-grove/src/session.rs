//! A [`Session`]: the engine and the dashboard together, one loop turn at a time. The
//! terminal front end ([`crate::tui`]) and tests drive the same session: a frame, the keys
//! pressed, a drawing.

use std::path::PathBuf;
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use grove_runtime::{BuildOptions, Engine, EngineEvent};
use ratatui::Frame;
use ratatui::crossterm::event::KeyEvent;

use crate::dashboard::{Action, Dashboard, view};
use crate::logs::LogLines;
use crate::run::{Retried, Waiting};

/// The engine and its dashboard.
#[derive(Debug)]
pub struct Session {
    engine: Engine,
    dashboard: Dashboard,
    build: BuildOptions,
    /// Crates that did not load at the start, tried again when they change.
    waiting: Option<Waiting>,
    quit: bool,
}

impl Session {
    /// A session over `engine`, whose modules were built from `crates` (module name, crate
    /// directory) where known; `build` is how to build a crate again (the `l` key);
    /// `events` from [`Engine::subscribe`], made before the modules were loaded.
    pub fn new(
        title: impl Into<String>,
        mut engine: Engine,
        events: Receiver<EngineEvent>,
        crates: &[(String, Option<PathBuf>)],
        build: BuildOptions,
        logs: Option<LogLines>,
    ) -> Self {
        let dashboard = Dashboard::new(title, &mut engine, events, crates, logs);
        Self {
            engine,
            dashboard,
            build,
            waiting: None,
            quit: false,
        }
    }

    /// Lists the crates that did not load at the start as failed, and loads each when it
    /// builds again.
    #[must_use]
    pub fn with_waiting(mut self, waiting: Waiting) -> Self {
        for failed in waiting.crates() {
            self.dashboard
                .load_failed(&failed.name, &failed.dir, &failed.error);
        }
        self.waiting = Some(waiting);
        self
    }

    /// The engine.
    pub fn engine(&mut self) -> &mut Engine {
        &mut self.engine
    }

    /// The dashboard.
    pub fn dashboard(&self) -> &Dashboard {
        &self.dashboard
    }

    /// One turn: a frame (paced by the engine; while paused, a wait of one frame period
    /// instead), then what happened in it.
    pub fn tick(&mut self) {
        if self.dashboard.paused() {
            let fps = self.engine.target_fps();
            let period = if fps > 0.0 { 1.0 / fps } else { 0.016 };
            std::thread::sleep(Duration::from_secs_f64(period.min(0.05)));
        } else {
            self.frame();
        }
        if let Some(waiting) = &mut self.waiting {
            for retried in waiting.poll(&mut self.engine) {
                match retried {
                    Retried::Loaded { name, waited_as } => {
                        self.dashboard.waited_loaded(&waited_as, &name);
                    }
                    Retried::Failed(failed) => {
                        self.dashboard
                            .load_failed(&failed.name, &failed.dir, &failed.error);
                    }
                }
            }
        }
        self.dashboard.observe(&mut self.engine);
    }

    fn frame(&mut self) {
        self.engine.step();
        if let Some(took) = self.engine.last_frame_time() {
            self.dashboard.frame_done(took);
        }
    }

    /// Reads the engine's figures now, rather than at the next refresh.
    pub fn refresh(&mut self) {
        self.dashboard.refresh(&mut self.engine);
    }

    /// Handles a key press.
    pub fn press(&mut self, key: KeyEvent) {
        if let Some(action) = self.dashboard.key(key) {
            self.apply(action);
        }
    }

    /// Does what `action` asks, and says how it went in the dashboard's notice line.
    pub fn apply(&mut self, action: Action) {
        let notice = match action {
            Action::Quit => {
                self.quit = true;
                "shutting down".to_owned()
            }
            Action::TogglePause => {
                let paused = !self.dashboard.paused();
                self.dashboard.set_paused(paused);
                if paused {
                    "paused: s runs one frame, p resumes (reloads wait for the next frame)"
                        .to_owned()
                } else {
                    "running".to_owned()
                }
            }
            Action::Step => {
                self.dashboard.set_paused(true);
                self.frame();
                format!("paused after frame {}", self.engine.frame())
            }
            Action::Reload(name) => {
                let started = Instant::now();
                match self.engine.reload(&name) {
                    Ok(reloaded) => format!(
                        "`{name}` reloaded: generation {} in {:.2} ms",
                        reloaded.generation,
                        started.elapsed().as_secs_f64() * 1e3
                    ),
                    Err(e) => format!("`{name}` not reloaded: {}", first_line(&e.to_string())),
                }
            }
            Action::Unload(name) => match self.engine.unload(&name) {
                Ok(_) => format!("`{name}` unloaded (its shutdown ran); l loads it again"),
                Err(e) => format!("`{name}` not unloaded: {}", first_line(&e.to_string())),
            },
            Action::Load(name) => self.load(&name),
        };
        self.dashboard.notice = Some(notice);
        self.dashboard.observe(&mut self.engine);
        self.dashboard.refresh(&mut self.engine);
    }

    fn load(&mut self, name: &str) -> String {
        let Some(module) = self.dashboard.modules().iter().find(|m| m.name == name) else {
            return format!("no module `{name}`");
        };
        if module.loaded {
            return format!("`{name}` is loaded already");
        }
        let Some(dir) = module.crate_dir.clone() else {
            return format!("`{name}` was not built from a crate here: it cannot be loaded again");
        };
        match self.engine.watch_crate_with(&dir, self.build.clone()) {
            Ok(loaded) => format!("`{loaded}` loaded from {}", dir.display()),
            Err(e) => format!("`{name}` not loaded: {}", first_line(&e.to_string())),
        }
    }

    /// Whether quitting was asked for.
    pub fn quitting(&self) -> bool {
        self.quit
    }

    /// Draws the dashboard.
    pub fn render(&self, frame: &mut Frame<'_>) {
        view::render(&self.dashboard, frame);
    }

    /// Runs every module's `shutdown` and unloads them.
    pub fn shutdown(mut self) -> grove_runtime::Result<()> {
        self.engine.shutdown()
    }
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or_default()
}
