//! Reading a container's json-file log (what the shim writes), once or following it.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;
use std::time::Duration;

use coracle_runtime::sys::raw::pidfd_open;
use nix::poll::{PollFd, PollFlags, PollTimeout};
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
    /// Only entries at or after this RFC 3339 time (compared as instants, any offset).
    pub since: Option<String>,
    /// The longest pause of `follow_log` between two looks for new entries and for the end
    /// (default 20 ms).
    pub poll: Option<Duration>,
    /// A process (the container's init) whose exit ends a pause at once, so that the end
    /// is noticed without waiting out a pause.
    pub wake_on_exit_of: Option<i32>,
}

/// The pauses of `follow_log`: exponential (1 ms doubling up to the longest), waiting on
/// a pidfd of the `wake_on_exit_of` process while it lives.
///
/// Not inotify, which would also catch output: closing an inotify instance that held
/// watches waits for an SRCU grace period (fsnotify's mark reaper), 11-17 ms measured
/// with strace here, on the path of every `run --rm`.
struct Pause {
    backoff: super::Backoff,
    exit: Option<OwnedFd>,
}

impl Pause {
    fn new(max: Duration, wake_on_exit_of: Option<i32>) -> Pause {
        Pause {
            backoff: super::Backoff::new(max),
            exit: wake_on_exit_of.and_then(|pid| pidfd_open(pid).ok()),
        }
    }

    fn wait(&mut self) {
        let Some(exit) = &self.exit else {
            self.backoff.sleep();
            return;
        };
        let ms = u16::try_from(self.backoff.next().as_millis()).unwrap_or(u16::MAX);
        let mut fds = [PollFd::new(exit.as_fd(), PollFlags::POLLIN)];
        match nix::poll::poll(&mut fds, PollTimeout::from(ms)) {
            // It exited: what follows (the shim's status, the last output) comes within
            // milliseconds, so pause briefly again, without the pidfd (readable for good).
            Ok(n) if n > 0 => {
                self.exit = None;
                self.backoff.reset();
            }
            _ => self.backoff.grow(),
        }
    }

    fn reset(&mut self) {
        self.backoff.reset();
    }
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
    read_log_upto(path, opts, u64::MAX)
}

/// [`read_log`], reading the current file only up to `limit` bytes.
fn read_log_upto(path: &Path, opts: &LogOptions, limit: u64) -> std::io::Result<Vec<LogLine>> {
    let mut lines = Vec::new();
    for n in (1..=9).rev() {
        let rotated = path.with_extension(format!("log.{n}"));
        if let Ok(f) = File::open(&rotated) {
            lines.extend(parse_lines(BufReader::new(f)));
        }
    }
    match File::open(path) {
        Ok(f) => lines.extend(parse_lines(BufReader::new(f.take(limit)))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    if let Some(since) = &opts.since {
        // As instants, not as text: `...:05Z` is before `...:05.123456789Z`, and an offset
        // other than Z names the same instant differently.
        let since = rfc3339_nanos(since).ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("invalid time for --since: {since}"),
            )
        })?;
        lines.retain(|l| rfc3339_nanos(&l.time).is_none_or(|t| t >= since));
    }
    if let Some(n) = opts.tail {
        let skip = lines.len().saturating_sub(n);
        lines.drain(..skip);
    }
    Ok(lines)
}

/// The end of the last complete entry (its `\n`) at or before byte `size` of the log.
fn whole_entries_end(path: &Path, size: u64) -> std::io::Result<u64> {
    let mut f = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let mut buf = vec![0u8; 16 * 1024];
    let mut end = size;
    while end > 0 {
        let start = end.saturating_sub(buf.len() as u64);
        let chunk = &mut buf[..(end - start) as usize];
        f.seek(SeekFrom::Start(start))?;
        f.read_exact(chunk)?;
        if let Some(i) = chunk.iter().rposition(|&b| b == b'\n') {
            return Ok(start + i as u64 + 1);
        }
        end = start;
    }
    Ok(0)
}

/// Nanoseconds since the Unix epoch of an RFC 3339 time: `YYYY-MM-DDTHH:MM:SS`, an
/// optional fraction of up to nine digits, then `Z` or `+HH:MM`/`-HH:MM` (none is read as
/// UTC, as some image configs write it).
pub fn rfc3339_nanos(t: &str) -> Option<i128> {
    let num = |s: &str| -> Option<i64> {
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    let (date, rest) = t.split_once(['T', 't', ' '])?;
    let mut d = date.splitn(3, '-');
    let (y, m, day) = (num(d.next()?)?, num(d.next()?)?, num(d.next()?)?);
    if rest.len() < 8 || !(1..=12).contains(&m) || !(1..=31).contains(&day) {
        return None;
    }
    let (clock, mut rest) = rest.split_at(8);
    let mut c = clock.splitn(3, ':');
    let (hh, mm, ss) = (num(c.next()?)?, num(c.next()?)?, num(c.next()?)?);
    let mut nanos: i128 = 0;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 || digits > 9 {
            return None;
        }
        nanos = i128::from(num(&frac[..digits])?) * 10i128.pow(9 - digits as u32);
        rest = &frac[digits..];
    }
    let offset = match rest {
        "" | "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let (oh, om) = rest[1..].split_once(':')?;
            sign * (num(oh)? * 3600 + num(om)? * 60)
        }
    };
    // Days from the civil date (proleptic Gregorian), after Howard Hinnant's algorithm.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + hh * 3600 + mm * 60 + ss - offset;
    Some(i128::from(secs) * 1_000_000_000 + nanos)
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
    // The size first, then the entries up to it: entries written meanwhile are read by
    // the loop below from that offset, none skipped (measuring after reading lost them).
    // The size may fall inside an entry the shim is writing: the loop starts at that
    // entry's beginning instead, or it would be cut in two and lost.
    let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    let mut offset = whole_entries_end(path, size)?;
    let initial = read_log_upto(path, opts, offset)?;
    for l in &initial {
        emit(l)?;
    }
    let mut pending = String::new();
    let mut pause = Pause::new(
        opts.poll.unwrap_or(Duration::from_millis(20)),
        opts.wake_on_exit_of,
    );
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
        pause.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_times_compare_as_instants() {
        assert_eq!(rfc3339_nanos("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            rfc3339_nanos("2024-01-01T00:00:00Z"),
            Some(1_704_067_200_000_000_000)
        );
        assert_eq!(
            rfc3339_nanos("2024-01-01T01:00:00.5+01:00"),
            Some(1_704_067_200_500_000_000)
        );
        let whole = rfc3339_nanos("2026-01-02T03:04:05Z").unwrap();
        let later = rfc3339_nanos("2026-01-02T03:04:05.123456789Z").unwrap();
        assert_eq!(later - whole, 123_456_789);
        assert_eq!(rfc3339_nanos("1970-01-01T00:00:01"), Some(1_000_000_000));
        for bad in [
            "",
            "2026-01-02",
            "2026-13-02T03:04:05Z",
            "2026-01-02T03:04:05+1",
            "x",
        ] {
            assert_eq!(rfc3339_nanos(bad), None, "{bad}");
        }
    }

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

    #[test]
    fn a_long_pause_ends_when_the_watched_process_exits() {
        // The pause is a minute long here; only the exit ends it in time.
        let mut child = std::process::Command::new("sleep")
            .arg("0.3")
            .spawn()
            .unwrap();
        let mut pause = Pause::new(Duration::from_secs(60), Some(child.id() as i32));
        assert!(pause.exit.is_some(), "pidfd of the child");
        while pause.backoff.next() < Duration::from_secs(60) {
            pause.backoff.grow();
        }
        let waiter = std::thread::spawn(move || {
            pause.wait();
            pause
        });
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while !waiter.is_finished() {
            assert!(
                std::time::Instant::now() < deadline,
                "the exit did not end the pause"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        let pause = waiter.join().unwrap();
        child.wait().unwrap();
        // The next pause is short again, and a plain sleep.
        assert_eq!(pause.backoff.next(), Duration::from_millis(1));
        assert!(pause.exit.is_none());
    }

    #[test]
    fn an_entry_half_written_when_the_follow_starts_is_read_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c-json.log");
        let entry = |n: u32| {
            format!("{{\"log\":\"{n}\\n\",\"stream\":\"stdout\",\"time\":\"2026-01-01T00:00:0{n}Z\"}}\n")
        };
        let second = entry(2);
        let (head, rest) = second.split_at(10);
        std::fs::write(&path, format!("{}{head}", entry(1))).unwrap();
        assert_eq!(
            whole_entries_end(&path, std::fs::metadata(&path).unwrap().len()).unwrap(),
            entry(1).len() as u64
        );
        // The rest of the entry lands after the follow began; then the end.
        let done = std::sync::atomic::AtomicBool::new(false);
        let mut seen = Vec::new();
        std::thread::scope(|s| {
            s.spawn(|| {
                std::thread::sleep(Duration::from_millis(100));
                let mut f = std::fs::OpenOptions::new()
                    .append(true)
                    .open(&path)
                    .unwrap();
                std::io::Write::write_all(&mut f, rest.as_bytes()).unwrap();
                done.store(true, std::sync::atomic::Ordering::SeqCst);
            });
            follow_log(
                &path,
                &LogOptions::default(),
                |l| {
                    seen.push(l.log.clone());
                    Ok(())
                },
                || done.load(std::sync::atomic::Ordering::SeqCst),
            )
            .unwrap();
        });
        assert_eq!(seen, ["1\n", "2\n"]);
    }
}
