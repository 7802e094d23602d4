//! The markdown table the `grove-bench` binary prints.

use std::fmt::Write as _;
use std::time::Duration;

/// One row: what, measured, floor, ratio, target, verdict.
#[derive(Debug, Default)]
pub struct Table {
    rows: Vec<[String; 6]>,
}

/// Milliseconds with three decimals.
pub fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1e3)
}

impl Table {
    /// Adds a row.
    pub fn row(
        &mut self,
        what: impl Into<String>,
        measured: impl Into<String>,
        floor: impl Into<String>,
        ratio: impl Into<String>,
        target: impl Into<String>,
        met: Option<bool>,
    ) {
        let verdict = match met {
            Some(true) => "yes",
            Some(false) => "**no**",
            None => "",
        };
        self.rows.push([
            what.into(),
            measured.into(),
            floor.into(),
            ratio.into(),
            target.into(),
            verdict.to_owned(),
        ]);
    }

    /// The table as markdown.
    pub fn render(&self) -> String {
        let mut out = String::from(
            "| figure | measured | floor (same run) | ratio | target | met |\n|---|---|---|---|---|---|\n",
        );
        for row in &self.rows {
            let _ = writeln!(out, "| {} |", row.join(" | "));
        }
        out
    }
}
