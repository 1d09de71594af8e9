//! Logging: `tracing` with text or JSON output, an `RUST_LOG`-style filter
//! that can be changed while the process runs, and every reconcile's lines
//! carrying the object, its creator and a reconcile id (span fields).

use tracing_subscriber::{EnvFilter, Registry, fmt, prelude::*, reload};

/// Log line format.
#[derive(Debug, Clone, Copy, clap::ValueEnum, Default)]
pub enum LogFormat {
    /// Human-readable text.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// Changes the log filter of a running process.
#[derive(Clone)]
pub struct LogLevel {
    handle: reload::Handle<EnvFilter, Registry>,
    current: std::sync::Arc<std::sync::Mutex<String>>,
}

impl LogLevel {
    /// Replaces the filter, for example with `info,portico=debug`.
    pub fn set(&self, filter: &str) -> Result<(), String> {
        let f = EnvFilter::try_new(filter).map_err(|e| format!("{filter:?} is not a log filter: {e}"))?;
        self.handle.reload(f).map_err(|e| e.to_string())?;
        *self.current.lock().unwrap() = filter.to_string();
        Ok(())
    }

    /// The filter in force.
    pub fn get(&self) -> String {
        self.current.lock().unwrap().clone()
    }
}

/// Installs the global subscriber; `filter` is an `EnvFilter` directive such as `info,portico=debug`.
pub fn init(format: LogFormat, filter: &str) -> LogLevel {
    let (filter_layer, handle) =
        reload::Layer::new(EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info")));
    let registry = tracing_subscriber::registry().with(filter_layer);
    let _ = match format {
        LogFormat::Text => {
            use std::io::IsTerminal;
            let ansi = std::io::stderr().is_terminal();
            registry
                .with(fmt::layer().with_ansi(ansi).with_writer(std::io::stderr))
                .try_init()
        }
        LogFormat::Json => registry
            .with(
                fmt::layer()
                    .json()
                    .with_current_span(true)
                    .with_span_list(false)
                    .with_writer(std::io::stderr),
            )
            .try_init(),
    };
    LogLevel {
        handle,
        current: std::sync::Arc::new(std::sync::Mutex::new(filter.to_string())),
    }
}

/// A short random id for one reconcile, so its log lines can be followed.
pub fn reconcile_id() -> String {
    hex::encode(rand::random::<[u8; 4]>())
}
