//! The container log in Docker's json-file format, with Docker's size rotation.
//!
//! One JSON object per line: `{"log":"text\n","stream":"stdout","time":RFC3339Nano}`.
//! Output is split at newlines; a line without a newline is written once it reaches
//! [`MAX_LINE`] bytes or its stream ends (then `log` has no trailing `\n`, as Docker
//! writes a partial line). Bytes that are not UTF-8 are replaced with U+FFFD.
//!
//! Rotation (Docker's `max-size`/`max-file`): before an entry is written, if the file
//! has reached `max_size` bytes it is rotated: with `max_files` = 1 it is truncated;
//! otherwise `log.(N-2)` → `log.(N-1)`, …, `log` → `log.1` and a new `log` starts, so at
//! most `max_files` files exist. A file can exceed `max_size` by one entry.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// A line longer than this is written in pieces (Docker's 16 KiB).
pub const MAX_LINE: usize = 16 * 1024;

pub struct JsonLog {
    path: PathBuf,
    max_size: Option<u64>,
    max_files: u32,
    file: Option<File>,
    size: u64,
    scratch: Vec<u8>,
}

#[derive(serde::Serialize)]
struct Entry<'a> {
    log: &'a str,
    stream: &'a str,
    time: &'a str,
}

impl JsonLog {
    pub fn new(path: &Path, max_size: Option<u64>, max_files: u32) -> JsonLog {
        JsonLog {
            path: path.to_path_buf(),
            max_size,
            max_files: max_files.max(1),
            file: None,
            size: 0,
            scratch: Vec::new(),
        }
    }

    fn open(&mut self, truncate: bool) -> std::io::Result<()> {
        let f = OpenOptions::new()
            .create(true)
            .append(!truncate)
            .write(true)
            .truncate(truncate)
            .mode(0o640)
            .custom_flags(libc::O_CLOEXEC)
            .open(&self.path)?;
        self.size = f.metadata()?.len();
        self.file = Some(f);
        Ok(())
    }

    fn rotate(&mut self) -> std::io::Result<()> {
        self.file = None;
        if self.max_files < 2 {
            return self.open(true);
        }
        let numbered = |i: u32| {
            let mut p = self.path.clone().into_os_string();
            p.push(format!(".{i}"));
            PathBuf::from(p)
        };
        for i in (1..self.max_files - 1).rev() {
            match std::fs::rename(numbered(i), numbered(i + 1)) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        std::fs::rename(&self.path, numbered(1))?;
        self.open(true)
    }

    /// Write one entry for `text` from `stream` ("stdout" or "stderr").
    pub fn write(&mut self, stream: &str, text: &[u8]) -> std::io::Result<()> {
        if self.file.is_none() {
            self.open(false)?;
        }
        if self.max_size.is_some_and(|max| self.size >= max) {
            self.rotate()?;
        }
        let time = coracle_runtime::state::rfc3339_now();
        let log = String::from_utf8_lossy(text);
        self.scratch.clear();
        serde_json::to_writer(
            &mut self.scratch,
            &Entry {
                log: &log,
                stream,
                time: &time,
            },
        )
        .map_err(std::io::Error::other)?;
        self.scratch.push(b'\n');
        if let Some(f) = &mut self.file {
            f.write_all(&self.scratch)?;
        }
        self.size += self.scratch.len() as u64;
        if self.scratch.capacity() > 4 * MAX_LINE {
            // Do not keep a big buffer after one big entry.
            self.scratch = Vec::new();
        }
        Ok(())
    }

    /// Close the file (it is reopened on the next write).
    pub fn close(&mut self) {
        if let Some(f) = self.file.take() {
            let _ = f.sync_data();
        }
    }
}

/// Splits one stream's output into lines.
#[derive(Default)]
pub struct Lines {
    partial: Vec<u8>,
}

impl Lines {
    /// Feed `chunk`; `emit` gets each complete line (with its `\n`), and pieces of
    /// [`MAX_LINE`] bytes of a longer one.
    pub fn feed(&mut self, mut chunk: &[u8], emit: &mut dyn FnMut(&[u8])) {
        while let Some(nl) = chunk.iter().position(|&b| b == b'\n') {
            let (line, rest) = chunk.split_at(nl + 1);
            if self.partial.is_empty() {
                emit(line);
            } else {
                self.partial.extend_from_slice(line);
                emit(&self.partial);
                self.partial.clear();
            }
            chunk = rest;
        }
        self.partial.extend_from_slice(chunk);
        while self.partial.len() >= MAX_LINE {
            let rest = self.partial.split_off(MAX_LINE);
            emit(&self.partial);
            self.partial = rest;
        }
        if self.partial.is_empty() && self.partial.capacity() > MAX_LINE {
            self.partial = Vec::new();
        }
    }

    /// Emit what is left (a last line without a newline).
    pub fn flush(&mut self, emit: &mut dyn FnMut(&[u8])) {
        if !self.partial.is_empty() {
            emit(&self.partial);
            self.partial = Vec::new();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines_of(chunks: &[&[u8]]) -> Vec<Vec<u8>> {
        let mut l = Lines::default();
        let mut out = Vec::new();
        for c in chunks {
            l.feed(c, &mut |x| out.push(x.to_vec()));
        }
        l.flush(&mut |x| out.push(x.to_vec()));
        out
    }

    #[test]
    fn splits_at_newlines_across_chunks() {
        let out = lines_of(&[b"a\nb", b"c\n\nd"]);
        assert_eq!(
            out,
            vec![
                b"a\n".to_vec(),
                b"bc\n".to_vec(),
                b"\n".to_vec(),
                b"d".to_vec()
            ]
        );
        let long = vec![b'x'; MAX_LINE + 10];
        let out = lines_of(&[&long]);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].len(), MAX_LINE);
    }

    #[test]
    fn writes_docker_json_and_rotates() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ct.log");
        let mut log = JsonLog::new(&path, Some(100), 3);
        for i in 0..20 {
            log.write("stdout", format!("line {i}\n").as_bytes())
                .unwrap();
        }
        log.write("stderr", b"bad \xff byte").unwrap();
        log.close();
        let text = std::fs::read_to_string(&path).unwrap();
        let last: serde_json::Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
        assert_eq!(last["stream"], "stderr");
        assert_eq!(last["log"], "bad \u{fffd} byte");
        assert!(last["time"].as_str().unwrap().ends_with('Z'));
        assert!(dir.path().join("ct.log.1").exists());
        assert!(dir.path().join("ct.log.2").exists());
        assert!(!dir.path().join("ct.log.3").exists());
        for p in ["ct.log", "ct.log.1", "ct.log.2"] {
            let len = std::fs::metadata(dir.path().join(p)).unwrap().len();
            assert!(len < 100 + 100, "{p}: {len}");
        }

        // max_files 1: truncation, no numbered files.
        let path = dir.path().join("one.log");
        let mut log = JsonLog::new(&path, Some(100), 1);
        for i in 0..20 {
            log.write("stdout", format!("line {i}\n").as_bytes())
                .unwrap();
        }
        assert!(!dir.path().join("one.log.1").exists());
        assert!(std::fs::metadata(&path).unwrap().len() < 200);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("line 19"), "{text}");
    }
}
