//! [`Health`]: how a module says it is doing, through
//! [`Module::health`](crate::Module::health).

use std::fmt;

use serde::{Deserialize, Serialize};

/// A module's own verdict on how it is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HealthStatus {
    /// Working as intended.
    Healthy,
    /// Working, but not as well as it should (falling behind, a resource running low).
    Degraded,
    /// Not doing its job. The host is told with an event.
    Failed,
}

impl fmt::Display for HealthStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            HealthStatus::Healthy => "healthy",
            HealthStatus::Degraded => "degraded",
            HealthStatus::Failed => "failed",
        })
    }
}

/// A health report: a status, a message and named numeric metrics.
///
/// ```
/// use grove::{Health, HealthStatus};
///
/// let report = Health::degraded("queue backing up")
///     .metric("queue_len", 812.0)
///     .metric("dropped", 3.0);
/// assert_eq!(report.status(), HealthStatus::Degraded);
/// assert_eq!(report.metrics()[0], ("queue_len".to_owned(), 812.0));
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Health {
    status: HealthStatus,
    message: String,
    metrics: Vec<(String, f64)>,
}

impl Default for Health {
    fn default() -> Self {
        Self::healthy()
    }
}

impl Health {
    /// Healthy, with no message.
    pub fn healthy() -> Self {
        Self::new(HealthStatus::Healthy, "")
    }

    /// Degraded, saying why.
    pub fn degraded(message: impl Into<String>) -> Self {
        Self::new(HealthStatus::Degraded, message)
    }

    /// Failed, saying why.
    pub fn failed(message: impl Into<String>) -> Self {
        Self::new(HealthStatus::Failed, message)
    }

    /// A report with `status` and `message`.
    pub fn new(status: HealthStatus, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            metrics: Vec::new(),
        }
    }

    /// Adds a named metric (kept in the order given; a name given twice is kept twice).
    #[must_use]
    pub fn metric(mut self, name: impl Into<String>, value: f64) -> Self {
        self.metrics.push((name.into(), value));
        self
    }

    /// The status.
    pub fn status(&self) -> HealthStatus {
        self.status
    }

    /// The message; empty when none was given.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The metrics, in the order they were added.
    pub fn metrics(&self) -> &[(String, f64)] {
        &self.metrics
    }
}

impl fmt::Display for Health {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.status)?;
        if !self.message.is_empty() {
            write!(f, ": {}", self.message)?;
        }
        for (name, value) in &self.metrics {
            write!(f, " {name}={value}")?;
        }
        Ok(())
    }
}
