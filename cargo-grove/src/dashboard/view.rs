//! Draws the [`Dashboard`]: a title line with the frame rate; the modules, one row each
//! (generation, health, process time with its sparkline, faults, messages, build); the
//! selected module's reload history, build result and config beside the frame-time graph;
//! the log; the keys.

use std::time::Duration;

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Cell, Paragraph, Row, Sparkline, Table, TableState, Wrap};

use grove_runtime::grove::HealthStatus;

use super::keys::HELP;
use super::{BuildState, Dashboard, HistoryKind, ModuleView};

/// Draws `dashboard` on the whole of `frame`.
pub fn render(dashboard: &Dashboard, frame: &mut Frame<'_>) {
    let rows = dashboard.modules().len().max(1) as u16;
    let [title, table, middle, log, help] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length((rows + 3).min(14)),
        Constraint::Min(10),
        Constraint::Percentage(30),
        Constraint::Length(1),
    ])
    .areas(frame.area());
    frame.render_widget(title_line(dashboard), title);
    render_modules(dashboard, frame, table);
    let [detail, frames] =
        Layout::horizontal([Constraint::Percentage(60), Constraint::Percentage(40)]).areas(middle);
    render_detail(dashboard, frame, detail);
    render_frames(dashboard, frame, frames);
    render_log(dashboard, frame, log);
    let help_line = match &dashboard.notice {
        Some(notice) => Line::from(vec![
            Span::raw(HELP).dark_gray(),
            Span::raw("  │ "),
            Span::raw(notice.as_str()).yellow(),
        ]),
        None => Line::from(HELP).dark_gray(),
    };
    frame.render_widget(Paragraph::new(help_line), help);
}

fn title_line(dashboard: &Dashboard) -> Paragraph<'static> {
    let state = if dashboard.paused() {
        Span::raw(" PAUSED ").black().on_yellow()
    } else {
        Span::raw(" running ").black().on_green()
    };
    Paragraph::new(Line::from(vec![
        Span::raw(format!(" grove · {} ", dashboard.title)).bold(),
        state,
        Span::raw(format!(
            "  frame {}  {:.2} fps (target {:.0})",
            dashboard.frame, dashboard.fps, dashboard.target_fps
        )),
    ]))
}

fn status_span(module: &ModuleView) -> Span<'static> {
    if !module.loaded && module.load_failed.is_some() {
        return Span::raw("not loaded").red().bold();
    }
    if !module.loaded {
        return Span::raw("unloaded").dark_gray();
    }
    if module.faulted {
        return Span::raw("faulted").red().bold();
    }
    match module.status {
        Some(HealthStatus::Healthy) => Span::raw("healthy").green(),
        Some(HealthStatus::Degraded) => Span::raw("degraded").yellow(),
        Some(HealthStatus::Failed) => Span::raw("failed").red(),
        None => Span::raw("?"),
    }
}

fn build_span(build: &BuildState) -> Span<'static> {
    match build {
        BuildState::Idle => Span::raw("-").dark_gray(),
        BuildState::Building { since } => {
            Span::raw(format!("building {:.0}s", since.elapsed().as_secs_f64())).cyan()
        }
        BuildState::Built { took, changed } => Span::raw(format!(
            "ok {:.1}s{}",
            took.as_secs_f64(),
            if *changed { "" } else { " (same)" }
        ))
        .green(),
        BuildState::Failed(_) => Span::raw("FAILED").red().bold(),
    }
}

/// A sparkline as text, for a table cell: one block per sample, scaled to the largest.
pub fn sparkline_text(samples: impl Iterator<Item = f64> + Clone, width: usize) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let samples: Vec<f64> = samples.collect();
    let shown = &samples[samples.len().saturating_sub(width)..];
    let max = shown.iter().copied().fold(0.0_f64, f64::max);
    shown
        .iter()
        .map(|&v| {
            if max <= 0.0 || !v.is_finite() {
                BARS[0]
            } else {
                let level = ((v / max) * 7.0).round().clamp(0.0, 7.0) as usize;
                BARS[level]
            }
        })
        .collect()
}

/// Microseconds, as a person reads them.
fn micros(us: f64) -> String {
    if us >= 1000.0 {
        format!("{:.2}ms", us / 1000.0)
    } else {
        format!("{us:.1}µs")
    }
}

fn rate(per_sec: f64) -> String {
    if per_sec >= 10_000.0 {
        format!("{:.0}k", per_sec / 1000.0)
    } else {
        format!("{per_sec:.0}")
    }
}

fn render_modules(dashboard: &Dashboard, frame: &mut Frame<'_>, area: Rect) {
    let header = Row::new([
        "module",
        "gen",
        "health",
        "p50",
        "p99",
        "process",
        "faults",
        "msg out/s",
        "in/s",
        "drops",
        "build",
    ])
    .style(Style::new().add_modifier(Modifier::BOLD));
    let rows = dashboard.modules().iter().map(|m| {
        let faults = if m.panics > 0 || m.faulted {
            Span::raw(m.panics.max(1).to_string()).red()
        } else {
            Span::raw("0")
        };
        let drops = m.messages.dropped + m.messages.rejected + m.messages.decode_errors;
        Row::new([
            Cell::from(m.name.clone()),
            Cell::from(m.generation.to_string()),
            Cell::from(status_span(m)),
            Cell::from(micros(m.p50_us)),
            Cell::from(micros(m.p99_us)),
            Cell::from(sparkline_text(m.process_us.iter().copied(), 24)).cyan(),
            Cell::from(faults),
            Cell::from(rate(m.messages.published_per_sec)),
            Cell::from(rate(m.messages.delivered_per_sec)),
            Cell::from(if drops > 0 {
                Span::raw(drops.to_string()).yellow()
            } else {
                Span::raw("0")
            }),
            Cell::from(build_span(&m.build)),
        ])
    });
    let widths = [
        Constraint::Min(12),
        Constraint::Length(4),
        Constraint::Length(10),
        Constraint::Length(9),
        Constraint::Length(9),
        Constraint::Length(24),
        Constraint::Length(6),
        Constraint::Length(9),
        Constraint::Length(6),
        Constraint::Length(6),
        Constraint::Length(14),
    ];
    let table = Table::new(rows, widths)
        .header(header)
        .row_highlight_style(Style::new().add_modifier(Modifier::REVERSED))
        .block(Block::bordered().title(" modules "));
    let mut state = TableState::default()
        .with_selected((!dashboard.modules().is_empty()).then_some(dashboard.selected));
    frame.render_stateful_widget(table, area, &mut state);
}

fn took(d: Duration) -> String {
    micros(d.as_secs_f64() * 1e6)
}

fn history_line(entry: &super::HistoryEntry) -> Vec<Line<'static>> {
    let at = format!("frame {:>7}  ", entry.frame);
    // The line that says what went wrong: a compiler's `error...` line when there is one.
    let first = |s: &str| {
        s.lines()
            .find(|l| l.starts_with("error"))
            .or_else(|| s.lines().next())
            .unwrap_or_default()
            .to_owned()
    };
    match &entry.what {
        HistoryKind::Reloaded {
            generation,
            took: t,
            state_bytes,
            format,
            unmapped,
            notes,
        } => {
            let mut lines = vec![Line::from(vec![
                Span::raw(at),
                Span::raw(format!("reloaded → gen {generation}")).green(),
                Span::raw(format!(
                    " in {}, state {state_bytes} B {format}{}",
                    took(*t),
                    if *unmapped {
                        ""
                    } else {
                        ", old library still mapped"
                    }
                )),
            ])];
            lines.extend(
                notes
                    .iter()
                    .map(|n| Line::from(format!("               {n}")).yellow()),
            );
            lines
        }
        HistoryKind::Refused(why) => vec![Line::from(vec![
            Span::raw(at),
            Span::raw("refused: ").red(),
            Span::raw(first(why)),
        ])],
        HistoryKind::BuildFailed(why) => vec![Line::from(vec![
            Span::raw(at),
            Span::raw("build failed: ").red(),
            Span::raw(first(why)),
        ])],
        HistoryKind::Panicked(why) => vec![Line::from(vec![
            Span::raw(at),
            Span::raw("panicked: ").red().bold(),
            Span::raw(first(why)),
        ])],
        HistoryKind::ConfigRefused(why) => vec![Line::from(vec![
            Span::raw(at),
            Span::raw("config refused: ").yellow(),
            Span::raw(first(why)),
        ])],
        HistoryKind::Restored { age, fields } => vec![
            Line::from(vec![
                Span::raw(at),
                Span::raw("resumed").green(),
                Span::raw(format!(
                    " from the state saved {:.0} s before",
                    age.as_secs_f64()
                )),
            ]),
            Line::from(format!("               state: {fields}")).yellow(),
        ],
        HistoryKind::SetAside(why) => vec![Line::from(vec![
            Span::raw(at),
            Span::raw("saved state set aside: ").yellow(),
            Span::raw(first(why)),
        ])],
        HistoryKind::Unloaded => vec![Line::from(vec![Span::raw(at), Span::raw("unloaded")])],
        HistoryKind::Loaded => vec![Line::from(vec![Span::raw(at), Span::raw("loaded")])],
    }
}

fn render_detail(dashboard: &Dashboard, frame: &mut Frame<'_>, area: Rect) {
    let Some(m) = dashboard.selected() else {
        frame.render_widget(
            Paragraph::new("no module").block(Block::bordered().title(" module ")),
            area,
        );
        return;
    };
    let mut lines = Vec::new();
    let mut health = vec![Span::raw("health: "), status_span(m)];
    if !m.message.is_empty() {
        health.push(Span::raw(format!(" — {}", m.message)));
    }
    for (name, value) in &m.metrics {
        health.push(Span::raw(format!("  {name}={value}")).dark_gray());
    }
    lines.push(Line::from(health));
    if let Some(config) = &m.config {
        lines.push(Line::from(vec![
            Span::raw("config: "),
            Span::raw(config.clone()).cyan(),
        ]));
    }
    if let BuildState::Failed(error) = &m.build {
        lines.push(
            Line::from("build failed; the running version is kept:")
                .red()
                .bold(),
        );
        lines.extend(error.lines().map(|l| Line::from(l.to_owned()).red()));
    } else if let Some(error) = m.load_failed.as_ref().filter(|_| !m.loaded) {
        lines.push(
            Line::from("did not load; it loads when its crate builds again:")
                .red()
                .bold(),
        );
        lines.extend(error.lines().map(|l| Line::from(l.to_owned()).red()));
    } else if let Some(error) = m.last_error.as_ref().filter(|_| m.faulted) {
        lines.push(
            Line::from("skipped until a new version loads:")
                .red()
                .bold(),
        );
        lines.extend(error.lines().map(|l| Line::from(l.to_owned()).red()));
    }
    lines.push(Line::from("history:").bold());
    if m.history.is_empty() {
        lines.push(Line::from("  (no reload yet: save a change to its source)").dark_gray());
    }
    let history: Vec<_> = m.history.iter().flat_map(history_line).collect();
    // The newest entries, as many as fit under what is above.
    let room = (area.height as usize).saturating_sub(2 + lines.len());
    lines.extend(
        history[history.len().saturating_sub(room)..]
            .iter()
            .cloned(),
    );
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(Block::bordered().title(format!(" {} ", m.name))),
        area,
    );
}

fn render_frames(dashboard: &Dashboard, frame: &mut Frame<'_>, area: Rect) {
    let times = dashboard.frame_times();
    let width = area.width.saturating_sub(2) as usize;
    let shown: Vec<u64> = times
        .iter()
        .skip(times.len().saturating_sub(width))
        .map(|us| us.round() as u64)
        .collect();
    let last = times.back().copied().unwrap_or(0.0);
    let max = shown.iter().copied().max().unwrap_or(0);
    let budget = 1e6 / dashboard.target_fps.max(1.0);
    let title = format!(
        " frame time: {} now, {} max (budget {}) ",
        micros(last),
        micros(max as f64),
        micros(budget)
    );
    let color = if (max as f64) > budget {
        Color::Yellow
    } else {
        Color::Green
    };
    frame.render_widget(
        Sparkline::default()
            .data(&shown)
            .style(Style::new().fg(color))
            .block(Block::bordered().title(title)),
        area,
    );
}

fn render_log(dashboard: &Dashboard, frame: &mut Frame<'_>, area: Rect) {
    let room = area.height.saturating_sub(2) as usize;
    let lines: Vec<Line<'_>> = match dashboard.logs() {
        Some(logs) => logs
            .latest(room)
            .into_iter()
            .map(|l| {
                let style = if l.contains("ERROR") {
                    Style::new().fg(Color::Red)
                } else if l.contains("WARN") {
                    Style::new().fg(Color::Yellow)
                } else {
                    Style::new()
                };
                Line::styled(l, style)
            })
            .collect(),
        None => vec![Line::from("(logs go to stderr)").dark_gray()],
    };
    frame.render_widget(
        Paragraph::new(lines).block(Block::bordered().title(" log ")),
        area,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparklines_scale_to_the_largest_sample_and_keep_the_newest() {
        assert_eq!(sparkline_text([0.0, 1.0, 2.0].into_iter(), 8), "▁▅█");
        assert_eq!(sparkline_text([9.0, 1.0, 1.0].into_iter(), 2), "██");
        assert_eq!(sparkline_text([0.0, 0.0].into_iter(), 8), "▁▁");
    }

    fn screen(dashboard: &Dashboard) -> String {
        let mut terminal =
            ratatui::Terminal::new(ratatui::backend::TestBackend::new(150, 48)).unwrap();
        terminal.draw(|frame| render(dashboard, frame)).unwrap();
        let buffer = terminal.backend().buffer();
        (0..buffer.area.height)
            .map(|y| {
                (0..buffer.area.width)
                    .map(|x| buffer[(x, y)].symbol())
                    .collect::<String>()
                    + "\n"
            })
            .collect()
    }

    #[test]
    fn a_module_that_did_not_load_is_listed_with_why_until_it_loads() {
        let mut engine = grove_runtime::Engine::builder()
            .watch_files(false)
            .build()
            .unwrap();
        let events = engine.subscribe();
        let mut dashboard = Dashboard::new("test", &mut engine, events, &[], None);
        dashboard.load_failed(
            "shaky-module",
            std::path::Path::new("/crates/shaky"),
            "module `shaky` panicked in init: not ready",
        );
        let shown = screen(&dashboard);
        let row = shown
            .lines()
            .find(|l| l.starts_with("│shaky-module "))
            .unwrap_or_else(|| panic!("no row:\n{shown}"));
        assert!(row.contains("not loaded"), "{shown}");
        assert!(
            shown.contains("did not load; it loads when its crate builds again")
                && shown.contains("panicked in init: not ready"),
            "{shown}"
        );
        // It loaded under its module name, which its package name stood for.
        dashboard.waited_loaded("shaky-module", "shaky");
        let names: Vec<_> = dashboard.modules().iter().map(|m| m.name.clone()).collect();
        assert_eq!(names, ["shaky"]);
        assert_eq!(
            dashboard.modules()[0].crate_dir.as_deref(),
            Some(std::path::Path::new("/crates/shaky"))
        );
    }
}
