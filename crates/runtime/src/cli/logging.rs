//! `--log FILE`, `--log-format text|json`, `--debug`.

use std::fs::OpenOptions;
use std::sync::Mutex;

use tracing::Level;

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
                builder
                    .json()
                    .flatten_event(true)
                    .with_writer(writer)
                    .init();
            } else {
                builder.with_ansi(false).with_writer(writer).init();
            }
        }
        None if json => builder
            .json()
            .flatten_event(true)
            .with_writer(std::io::stderr)
            .init(),
        None => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .with_writer(std::io::stderr)
            .init(),
    }
    Ok(())
}
