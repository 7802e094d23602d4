//! The dashboard's keys: what each does, and the help line that lists them.

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

/// What a key asks for. Moving the selection is done by the dashboard itself; the rest is
/// for the host, which owns the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Reload the selected module from its library now.
    Reload(String),
    /// Unload the selected module (its `shutdown` runs).
    Unload(String),
    /// Load an unloaded module again, from its crate.
    Load(String),
    /// Pause frames, or resume them.
    TogglePause,
    /// Run one frame (pausing first if running).
    Step,
    /// Shut every module down and leave.
    Quit,
}

/// The keys, as the help line shows them.
pub const HELP: &str = "↑↓ select  r reload  u unload  l load  p pause  s step  q quit";

impl super::Dashboard {
    /// What `key` asks for: moves the selection itself, returns what the host must do.
    pub fn key(&mut self, key: KeyEvent) -> Option<Action> {
        if key.kind == KeyEventKind::Release {
            return None;
        }
        let selected = self.selected().map(|m| m.name.clone());
        let action = match key.code {
            KeyCode::Char('c') if key.modifiers.contains(KeyModifiers::CONTROL) => {
                Some(Action::Quit)
            }
            KeyCode::Char('q') | KeyCode::Esc => Some(Action::Quit),
            KeyCode::Up | KeyCode::Char('k') => {
                self.select_by(-1);
                None
            }
            KeyCode::Down | KeyCode::Char('j') => {
                self.select_by(1);
                None
            }
            KeyCode::Char('r') => selected.clone().map(Action::Reload),
            KeyCode::Char('u') => selected.clone().map(Action::Unload),
            KeyCode::Char('l') => selected.clone().map(Action::Load),
            KeyCode::Char('p') | KeyCode::Char(' ') => Some(Action::TogglePause),
            KeyCode::Char('s') | KeyCode::Char('.') => Some(Action::Step),
            _ => None,
        };
        if action.is_none() && !matches!(key.code, KeyCode::Up | KeyCode::Down) {
            self.notice = None;
        }
        action
    }
}
