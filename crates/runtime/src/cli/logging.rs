//! `--log FILE`, `--log-format text|json`, `--debug`.
//!
//! JSON lines use runc's field names — `{"level":"error","msg":"...","time":"..."}`
//! — because engines (containerd, Podman) read a runtime's log file for the reason an
//! operation failed. Other event fields are added under their own names.

use std::fmt;
use std::fs::OpenOptions;
use std::sync::Mutex;

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

use super::Cli;

pub fn init(cli: &Cli) -> Result<(), String> {
    let level = if cli.debug { Level::DEBUG } else { Level::WARN };
    let json = match cli.log_format.as_str() {
        "text" => false,
        "json" => true,
        other => {
            return Err(format!(
                "--log-format: unknown format {other:?} (text or json)"
            ))
        }
    };
    let builder = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_target(false);
    match &cli.log {
        Some(path) => {
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| format!("--log {}: {e}", path.display()))?;
            let writer = Mutex::new(file);
            if json {
                builder.event_format(RuncJson).with_writer(writer).init();
            } else {
                builder.with_ansi(false).with_writer(writer).init();
            }
        }
        None if json => builder
            .event_format(RuncJson)
            .with_writer(std::io::stderr)
            .init(),
        None => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .with_writer(std::io::stderr)
            .init(),
    }
    Ok(())
}

/// One JSON object per line in runc's shape.
struct RuncJson;

impl<S, N> FormatEvent<S, N> for RuncJson
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut fields = JsonFields(serde_json::Map::new());
        event.record(&mut fields);
        let mut obj = fields.0;
        let msg = obj.remove("message").unwrap_or_default();
        let mut line = serde_json::Map::new();
        line.insert(
            "level".into(),
            event.metadata().level().as_str().to_lowercase().into(),
        );
        line.insert("msg".into(), msg);
        line.insert("time".into(), coracle_runtime::state::rfc3339_now().into());
        line.extend(obj);
        writeln!(writer, "{}", serde_json::Value::Object(line))
    }
}

struct JsonFields(serde_json::Map<String, serde_json::Value>);

impl Visit for JsonFields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0
            .insert(field.name().into(), format!("{value:?}").into());
    }
}
