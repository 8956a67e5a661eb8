//! The two unix sockets in the state directory and their clients.
//!
//! `attach.sock`: a client sends one JSON line `{"stdin":bool,"stdout":bool,"stderr":bool}`
//! (a missing field is false). From then on it receives the container's output:
//! - without a terminal, in Docker's multiplexed framing: an 8-byte header (stream
//!   type 1 = stdout or 2 = stderr, three zero bytes, the payload length as a
//!   big-endian u32) then the payload;
//! - with a terminal, the raw bytes of the pty.
//!
//! A client that asked for stdin may send bytes; they go to the container's stdin
//! (only if the shim was started with `--stdin`; otherwise they are discarded). When
//! such a client half-closes its write side, the container's stdin pipe is closed
//! (EOF for the container, like `docker run -i` with EOF on its input); with a terminal
//! nothing is closed. Any number of clients at once. Output produced before a client
//! connected is not replayed (the log has it), except that output still queued in the
//! container's pipe or pty when the client connects reaches it. A client that falls
//! more than [`MAX_PENDING`] bytes behind is disconnected. Clients stay connected
//! across restarts; when the container finally exits they get EOF.
//!
//! `ctl.sock`: JSON line requests, one answer line each:
//! - `{"resize":{"height":H,"width":W}}` → TIOCSWINSZ on the pty master (the size is
//!   also applied to the pty of later restarts);
//! - `{"kill":SIGNUM}` → the signal is sent to the container's init;
//!
//! answered `{"ok":true}` or `{"error":"..."}`.

use std::io::{ErrorKind, Read, Write};
use std::os::unix::net::UnixStream;

/// Output queued for one client beyond which it is disconnected.
pub const MAX_PENDING: usize = 1 << 20;
/// Longest accepted request line.
const MAX_LINE: usize = 4096;

#[derive(Debug, Default, Clone, Copy, serde::Deserialize)]
#[serde(default)]
pub struct AttachRequest {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
}

pub struct AttachClient {
    pub sock: UnixStream,
    line: Vec<u8>,
    /// Set once the request line has arrived.
    pub request: Option<AttachRequest>,
    pub out: Vec<u8>,
    /// The client half-closed its side: read no more.
    pub read_closed: bool,
    pub dead: bool,
}

/// What reading from an attach client produced.
pub enum AttachInput<'a> {
    Nothing,
    Stdin(&'a [u8]),
    /// The client (that asked for stdin) half-closed its write side.
    StdinEof,
}

impl AttachClient {
    pub fn new(sock: UnixStream) -> AttachClient {
        let _ = sock.set_nonblocking(true);
        AttachClient {
            sock,
            line: Vec::new(),
            request: None,
            out: Vec::new(),
            read_closed: false,
            dead: false,
        }
    }

    pub fn wants(&self, stream: u8) -> bool {
        match self.request {
            Some(r) if stream == 1 => r.stdout,
            Some(r) if stream == 2 => r.stderr,
            _ => false,
        }
    }

    /// Read what the client sent into `buf`.
    pub fn read<'a>(&mut self, buf: &'a mut [u8]) -> AttachInput<'a> {
        let n = match self.sock.read(buf) {
            Ok(0) => {
                self.read_closed = true;
                if self.request.is_none() {
                    self.dead = true;
                    return AttachInput::Nothing;
                }
                return if self.request.is_some_and(|r| r.stdin) {
                    AttachInput::StdinEof
                } else {
                    AttachInput::Nothing
                };
            }
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::WouldBlock || e.kind() == ErrorKind::Interrupted => {
                return AttachInput::Nothing
            }
            Err(_) => {
                self.dead = true;
                return AttachInput::Nothing;
            }
        };
        if self.request.is_some() {
            return if self.request.is_some_and(|r| r.stdin) {
                AttachInput::Stdin(&buf[..n])
            } else {
                AttachInput::Nothing
            };
        }
        // Still reading the request line; bytes after it are stdin.
        match buf[..n].iter().position(|&b| b == b'\n') {
            None => {
                self.line.extend_from_slice(&buf[..n]);
                if self.line.len() > MAX_LINE {
                    self.dead = true;
                }
                AttachInput::Nothing
            }
            Some(nl) => {
                self.line.extend_from_slice(&buf[..nl]);
                match serde_json::from_slice::<AttachRequest>(&self.line) {
                    Ok(r) => self.request = Some(r),
                    Err(_) => {
                        self.dead = true;
                        return AttachInput::Nothing;
                    }
                }
                self.line = Vec::new();
                let rest = &buf[nl + 1..n];
                if !rest.is_empty() && self.request.is_some_and(|r| r.stdin) {
                    AttachInput::Stdin(rest)
                } else {
                    AttachInput::Nothing
                }
            }
        }
    }

    /// Queue output for the client: framed (stream 1/2) or raw (`stream` 0).
    pub fn queue(&mut self, stream: u8, data: &[u8]) {
        if stream != 0 {
            self.out.push(stream);
            self.out.extend_from_slice(&[0, 0, 0]);
            self.out
                .extend_from_slice(&(data.len() as u32).to_be_bytes());
        }
        self.out.extend_from_slice(data);
        self.flush();
        if self.out.len() > MAX_PENDING {
            self.dead = true;
        }
    }

    /// Send what is queued, as far as the socket takes it without blocking.
    pub fn flush(&mut self) {
        while !self.out.is_empty() && !self.dead {
            match self.sock.write(&self.out) {
                Ok(n) => {
                    self.out.drain(..n);
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(_) => self.dead = true,
            }
        }
        if self.out.is_empty() && self.out.capacity() > 64 * 1024 {
            self.out = Vec::new();
        }
    }

    /// At the container's exit: send the rest (waiting at most a second), then EOF.
    pub fn finish(mut self) {
        let _ = self.sock.set_nonblocking(false);
        let _ = self
            .sock
            .set_write_timeout(Some(std::time::Duration::from_secs(1)));
        if !self.dead {
            let _ = self.sock.write_all(&self.out);
        }
        let _ = self.sock.shutdown(std::net::Shutdown::Both);
    }
}

#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CtlRequest {
    Resize { height: u16, width: u16 },
    Kill(i32),
}

pub struct CtlClient {
    pub sock: UnixStream,
    line: Vec<u8>,
    pub dead: bool,
}

impl CtlClient {
    pub fn new(sock: UnixStream) -> CtlClient {
        let _ = sock.set_nonblocking(true);
        CtlClient {
            sock,
            line: Vec::new(),
            dead: false,
        }
    }

    /// Read what arrived and answer each complete request with `handle`.
    pub fn serve(
        &mut self,
        buf: &mut [u8],
        handle: &mut dyn FnMut(CtlRequest) -> Result<(), String>,
    ) {
        let n = match self.sock.read(buf) {
            Ok(0) => {
                self.dead = true;
                return;
            }
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::WouldBlock || e.kind() == ErrorKind::Interrupted => {
                return
            }
            Err(_) => {
                self.dead = true;
                return;
            }
        };
        self.line.extend_from_slice(&buf[..n]);
        while let Some(nl) = self.line.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.line.drain(..=nl).collect();
            let answer = match serde_json::from_slice::<CtlRequest>(&line) {
                Ok(req) => handle(req),
                Err(e) => Err(format!("bad request: {e}")),
            };
            let text = match answer {
                Ok(()) => "{\"ok\":true}\n".to_string(),
                Err(e) => format!("{}\n", serde_json::json!({ "error": e })),
            };
            // Answers are tiny: a client that does not read them is dropped.
            let _ = self.sock.set_nonblocking(false);
            let _ = self
                .sock
                .set_write_timeout(Some(std::time::Duration::from_secs(1)));
            if self.sock.write_all(text.as_bytes()).is_err() {
                self.dead = true;
            }
            let _ = self.sock.set_nonblocking(true);
        }
        if self.line.len() > MAX_LINE {
            self.dead = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ctl_requests_parse() {
        let r: CtlRequest = serde_json::from_str(r#"{"resize":{"height":24,"width":80}}"#).unwrap();
        assert!(matches!(
            r,
            CtlRequest::Resize {
                height: 24,
                width: 80
            }
        ));
        let r: CtlRequest = serde_json::from_str(r#"{"kill":9}"#).unwrap();
        assert!(matches!(r, CtlRequest::Kill(9)));
        assert!(serde_json::from_str::<CtlRequest>(r#"{"stop":1}"#).is_err());
    }

    #[test]
    fn attach_frames_and_handshake() {
        let (a, mut b) = UnixStream::pair().unwrap();
        let mut c = AttachClient::new(a);
        b.write_all(b"{\"stdin\":true,\"stdout\":true}\nhello")
            .unwrap();
        let mut buf = [0u8; 256];
        match c.read(&mut buf) {
            AttachInput::Stdin(d) => assert_eq!(d, b"hello"),
            _ => panic!("expected stdin bytes after the request line"),
        }
        assert!(c.wants(1) && !c.wants(2));
        c.queue(1, b"abc");
        let mut got = [0u8; 11];
        b.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"\x01\x00\x00\x00\x00\x00\x00\x03abc");
        b.shutdown(std::net::Shutdown::Write).unwrap();
        assert!(matches!(c.read(&mut buf), AttachInput::StdinEof));
    }
}
