//! Pull events and a renderer that shows them as `docker pull` does: one line per layer,
//! redrawn in place on a terminal, or one plain line per state change otherwise.

use std::io::{IsTerminal, Write};
use std::sync::Mutex;

use crate::content::Digest;

/// What a pull is doing. Layer events may come from any download thread.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PullEvent {
    /// Resolving a reference to a manifest: `name` is `registry/repository`, `tag` the
    /// tag or, for a pull by digest, the digest.
    Resolving { name: String, tag: String },
    /// A layer that must be downloaded, before its download starts.
    LayerWaiting { digest: Digest, size: u64 },
    /// A layer already in the content store.
    LayerAlreadyExists { digest: Digest },
    /// Bytes of a layer in the ingest so far (a resumed download starts above zero).
    LayerDownloading {
        digest: Digest,
        done: u64,
        total: u64,
    },
    /// A transient failure; the download resumes after a pause.
    LayerRetrying {
        digest: Digest,
        attempt: u32,
        error: String,
    },
    /// All bytes are in; the digest is being checked.
    LayerVerifying { digest: Digest },
    /// The layer is committed to the store (sent right after the commit).
    LayerComplete { digest: Digest },
    /// Every blob is in the store.
    Done {
        reference: String,
        repo_digest: Digest,
        /// Whether any blob had to be downloaded.
        downloaded: bool,
    },
}

/// Receives pull events. `event` may block briefly (e.g. to queue an unpack) but should
/// not do long work: it runs on a download thread.
pub trait PullObserver: Send + Sync {
    fn event(&self, ev: PullEvent);
}

/// Ignores every event.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoProgress;

impl PullObserver for NoProgress {
    fn event(&self, _ev: PullEvent) {}
}

/// The first 12 hex digits, as Docker shows layer ids.
fn short_id(d: &Digest) -> String {
    d.hex()[..12].to_owned()
}

/// Decimal sizes with up to 3 significant digits, like Docker's `HumanSize`
/// (`512B`, `1.2MB`, `20MB`).
pub(crate) fn human_size(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "kB", "MB", "GB", "TB", "PB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1000.0 && unit < UNITS.len() - 1 {
        v /= 1000.0;
        unit += 1;
    }
    let digits = if v >= 100.0 {
        0
    } else if v >= 10.0 {
        1
    } else {
        2
    };
    let mut s = format!("{v:.digits$}");
    if s.contains('.') {
        s = s.trim_end_matches('0').trim_end_matches('.').to_owned();
    }
    format!("{s}{}", UNITS[unit])
}

/// `[=====>      ]  1.2MB/5MB` with a 50-column bar, as Docker draws it.
pub(crate) fn progress_bar(done: u64, total: u64) -> String {
    const WIDTH: u64 = 50;
    let filled = (done.min(total) * WIDTH).checked_div(total).unwrap_or(0) as usize;
    let mut bar = "=".repeat(filled);
    if (filled as u64) < WIDTH {
        bar.push('>');
        bar.push_str(&" ".repeat(WIDTH as usize - filled - 1));
    }
    format!("[{bar}]  {}/{}", human_size(done), human_size(total))
}

struct Row {
    id: String,
    status: String,
}

struct State<W> {
    out: W,
    rows: Vec<Row>,
    /// Rows drawn last time (the cursor sits just below them).
    drawn: usize,
}

/// Renders [`PullEvent`]s to a writer (a terminal, a log, or a `Vec<u8>` in tests).
pub struct ProgressRenderer<W: Write + Send> {
    tty: bool,
    state: Mutex<State<W>>,
}

impl ProgressRenderer<std::io::Stdout> {
    /// Renders to stdout, in place when it is a terminal.
    pub fn stdout() -> Self {
        let out = std::io::stdout();
        let tty = out.is_terminal();
        Self::new(out, tty)
    }
}

impl<W: Write + Send> ProgressRenderer<W> {
    /// `tty` selects in-place redrawing with ANSI cursor movement; without it every state
    /// change is one plain line.
    pub fn new(out: W, tty: bool) -> Self {
        ProgressRenderer {
            tty,
            state: Mutex::new(State {
                out,
                rows: Vec::new(),
                drawn: 0,
            }),
        }
    }

    /// Gives the writer back (e.g. the `Vec<u8>` a test rendered into).
    pub fn into_inner(self) -> W {
        self.state
            .into_inner()
            .unwrap_or_else(|e| e.into_inner())
            .out
    }

    fn render(&self, ev: PullEvent) {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let (id, status) = match ev {
            PullEvent::Resolving { name, tag } => {
                self.line(&mut st, &format!("{tag}: Pulling from {name}"));
                return;
            }
            PullEvent::Done {
                reference,
                repo_digest,
                downloaded,
            } => {
                let status = if downloaded {
                    "Downloaded newer image"
                } else {
                    "Image is up to date"
                };
                self.line(&mut st, &format!("Digest: {repo_digest}"));
                self.line(&mut st, &format!("Status: {status} for {reference}"));
                return;
            }
            PullEvent::LayerWaiting { digest, .. } => (short_id(&digest), "Waiting".to_owned()),
            PullEvent::LayerAlreadyExists { digest } => {
                (short_id(&digest), "Already exists".to_owned())
            }
            PullEvent::LayerDownloading {
                digest,
                done,
                total,
            } => {
                let status = if self.tty {
                    format!("Downloading {}", progress_bar(done, total))
                } else {
                    "Downloading".to_owned()
                };
                (short_id(&digest), status)
            }
            PullEvent::LayerRetrying {
                digest,
                attempt,
                error,
            } => (
                short_id(&digest),
                format!("Retrying (attempt {attempt}): {error}"),
            ),
            PullEvent::LayerVerifying { digest } => {
                (short_id(&digest), "Verifying Checksum".to_owned())
            }
            PullEvent::LayerComplete { digest } => (short_id(&digest), "Pull complete".to_owned()),
        };
        let idx = match st.rows.iter().position(|r| r.id == id) {
            Some(i) => i,
            None => {
                st.rows.push(Row {
                    id: id.clone(),
                    status: String::new(),
                });
                st.rows.len() - 1
            }
        };
        if st.rows[idx].status == status {
            return;
        }
        st.rows[idx].status = status.clone();
        if self.tty {
            self.redraw(&mut st);
        } else {
            let _ = writeln!(st.out, "{id}: {status}");
            let _ = st.out.flush();
        }
    }

    /// A line that is not a layer row (printed above the rows on a terminal).
    fn line(&self, st: &mut State<W>, text: &str) {
        if self.tty && st.drawn > 0 {
            // Finish with the rows: the line goes below them and they are not redrawn.
            st.rows.clear();
            st.drawn = 0;
        }
        let _ = writeln!(st.out, "{text}");
        let _ = st.out.flush();
    }

    fn redraw(&self, st: &mut State<W>) {
        let State { out, rows, drawn } = st;
        let mut buf = String::new();
        if *drawn > 0 {
            // Cursor up to the first row.
            buf.push_str(&format!("\x1b[{}A", *drawn));
        }
        for row in rows.iter() {
            // Clear the line, then write it.
            buf.push_str(&format!("\r\x1b[2K{}: {}\n", row.id, row.status));
        }
        *drawn = rows.len();
        let _ = out.write_all(buf.as_bytes());
        let _ = out.flush();
    }
}

impl<W: Write + Send> PullObserver for ProgressRenderer<W> {
    fn event(&self, ev: PullEvent) {
        self.render(ev);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(c: char) -> Digest {
        Digest::from_hex(&c.to_string().repeat(64)).unwrap()
    }

    fn events() -> Vec<PullEvent> {
        vec![
            PullEvent::Resolving {
                name: "127.0.0.1:5000/app".into(),
                tag: "v1".into(),
            },
            PullEvent::LayerAlreadyExists { digest: d('a') },
            PullEvent::LayerWaiting {
                digest: d('b'),
                size: 5_000_000,
            },
            PullEvent::LayerDownloading {
                digest: d('b'),
                done: 1_200_000,
                total: 5_000_000,
            },
            PullEvent::LayerDownloading {
                digest: d('b'),
                done: 5_000_000,
                total: 5_000_000,
            },
            PullEvent::LayerVerifying { digest: d('b') },
            PullEvent::LayerComplete { digest: d('b') },
            PullEvent::Done {
                reference: "127.0.0.1:5000/app:v1".into(),
                repo_digest: d('c'),
                downloaded: true,
            },
        ]
    }

    #[test]
    fn sizes_and_bars_look_like_docker() {
        assert_eq!(human_size(512), "512B");
        assert_eq!(human_size(1_200_000), "1.2MB");
        assert_eq!(human_size(5_000_000), "5MB");
        assert_eq!(human_size(20_971_520), "21MB");
        assert_eq!(human_size(1_536), "1.54kB");
        let bar = progress_bar(1_200_000, 5_000_000);
        assert_eq!(
            bar,
            format!("[{}>{}]  1.2MB/5MB", "=".repeat(12), " ".repeat(37))
        );
        assert!(progress_bar(5, 5).starts_with(&format!("[{}]", "=".repeat(50))));
    }

    #[test]
    fn plain_output_is_one_line_per_state_change() {
        let r = ProgressRenderer::new(Vec::new(), false);
        for ev in events() {
            r.event(ev);
        }
        let out = String::from_utf8(r.into_inner()).unwrap();
        let a = "a".repeat(12);
        let b = "b".repeat(12);
        assert_eq!(
            out,
            format!(
                "v1: Pulling from 127.0.0.1:5000/app\n{a}: Already exists\n{b}: Waiting\n\
                 {b}: Downloading\n{b}: Verifying Checksum\n{b}: Pull complete\n\
                 Digest: sha256:{}\nStatus: Downloaded newer image for 127.0.0.1:5000/app:v1\n",
                "c".repeat(64)
            )
        );
        assert!(!out.contains('\x1b'));
    }

    #[test]
    fn terminal_output_redraws_rows_in_place() {
        let r = ProgressRenderer::new(Vec::new(), true);
        for ev in events() {
            r.event(ev);
        }
        let out = String::from_utf8(r.into_inner()).unwrap();
        let b = "b".repeat(12);
        assert!(out.contains(&format!("{b}: Downloading [{}>", "=".repeat(12))));
        assert!(out.contains("1.2MB/5MB"));
        // Every redraw after the first moves up over the two rows.
        assert!(out.contains("\x1b[2A"));
        assert!(out.contains(&format!("\x1b[2K{b}: Pull complete\n")));
        assert!(out.ends_with("Status: Downloaded newer image for 127.0.0.1:5000/app:v1\n"));
    }
}
