//! Reading a container's json-file log (what the shim writes), once or following it.

use std::fs::File;
use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

/// One entry of the log.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct LogLine {
    pub log: String,
    pub stream: String,
    pub time: String,
}

/// What to show, as `docker logs` takes it.
#[derive(Debug, Clone, Default)]
pub struct LogOptions {
    /// Only the last N entries.
    pub tail: Option<usize>,
    /// Only entries at or after this RFC 3339 time (compared as strings: same format).
    pub since: Option<String>,
    /// How often `follow_log` looks for new entries (default 20 ms; `run` in the foreground
    /// uses less, since the time to notice the exit is part of every short run).
    pub poll: Option<Duration>,
}

fn parse_lines(reader: impl BufRead) -> Vec<LogLine> {
    reader
        .lines()
        .map_while(Result::ok)
        .filter_map(|l| serde_json::from_str::<LogLine>(&l).ok())
        .collect()
}

/// Every entry of the log (and of its rotated predecessors `log.N` … `log.1`), filtered.
pub fn read_log(path: &Path, opts: &LogOptions) -> std::io::Result<Vec<LogLine>> {
    let mut lines = Vec::new();
    for n in (1..=9).rev() {
        let rotated = path.with_extension(format!("log.{n}"));
        if let Ok(f) = File::open(&rotated) {
            lines.extend(parse_lines(BufReader::new(f)));
        }
    }
    match File::open(path) {
        Ok(f) => lines.extend(parse_lines(BufReader::new(f))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    if let Some(since) = &opts.since {
        lines.retain(|l| l.time.as_str() >= since.as_str());
    }
    if let Some(n) = opts.tail {
        let skip = lines.len().saturating_sub(n);
        lines.drain(..skip);
    }
    Ok(lines)
}

/// Calls `emit` for each entry, then for each new one as it is written, until `done()`
/// returns true and the log has been read to its end. Polls at most every `opts.poll`
/// (20 ms): after new entries every 1 ms, doubling while nothing comes.
pub fn follow_log(
    path: &Path,
    opts: &LogOptions,
    mut emit: impl FnMut(&LogLine) -> std::io::Result<()>,
    mut done: impl FnMut() -> bool,
) -> std::io::Result<()> {
    let initial = read_log(path, opts)?;
    for l in &initial {
        emit(l)?;
    }
    let mut offset = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    let mut pending = String::new();
    let mut pause = super::Backoff::new(opts.poll.unwrap_or(Duration::from_millis(20)));
    loop {
        let finished = done();
        if let Ok(mut f) = File::open(path) {
            let len = f.metadata()?.len();
            if len < offset {
                // Rotated or truncated: start over on the new file.
                offset = 0;
                pending.clear();
            }
            if len > offset {
                pause.reset();
                f.seek(SeekFrom::Start(offset))?;
                let mut reader = BufReader::new(f);
                loop {
                    let mut chunk = String::new();
                    let n = reader.read_line(&mut chunk)?;
                    if n == 0 {
                        break;
                    }
                    offset += n as u64;
                    pending.push_str(&chunk);
                    if pending.ends_with('\n') {
                        if let Ok(l) = serde_json::from_str::<LogLine>(pending.trim_end()) {
                            emit(&l)?;
                        }
                        pending.clear();
                    }
                }
            }
        }
        if finished {
            return Ok(());
        }
        pause.sleep();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_filters_and_tails() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c-json.log");
        std::fs::write(
            &path,
            concat!(
                "{\"log\":\"one\\n\",\"stream\":\"stdout\",\"time\":\"2026-01-01T00:00:01Z\"}\n",
                "{\"log\":\"two\\n\",\"stream\":\"stderr\",\"time\":\"2026-01-01T00:00:02Z\"}\n",
                "{\"log\":\"three\\n\",\"stream\":\"stdout\",\"time\":\"2026-01-01T00:00:03Z\"}\n",
            ),
        )
        .unwrap();
        let all = read_log(&path, &LogOptions::default()).unwrap();
        assert_eq!(all.len(), 3);
        assert_eq!(all[1].stream, "stderr");
        let tail = read_log(
            &path,
            &LogOptions {
                tail: Some(1),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(tail[0].log, "three\n");
        let since = read_log(
            &path,
            &LogOptions {
                since: Some("2026-01-01T00:00:02Z".into()),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(since.len(), 2);
    }
}
