//! The command line (see the crate documentation for the contract).

use std::path::PathBuf;

/// What to do when the container exits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Restart {
    No,
    Always,
    UnlessStopped,
    /// Restart after a non-zero exit, at most this many times (0: no limit).
    OnFailure(u32),
}

impl Restart {
    pub fn parse(s: &str) -> Result<Restart, String> {
        match s {
            "no" => Ok(Restart::No),
            "always" => Ok(Restart::Always),
            "unless-stopped" => Ok(Restart::UnlessStopped),
            "on-failure" => Ok(Restart::OnFailure(0)),
            _ => match s.strip_prefix("on-failure:") {
                Some(n) => n
                    .parse()
                    .map(Restart::OnFailure)
                    .map_err(|_| format!("--restart {s:?}: the count must be a number")),
                None => Err(format!(
                    "--restart {s:?}: expected no, always, unless-stopped or on-failure[:N]"
                )),
            },
        }
    }

    /// Whether a run that ended with `exit_code`, after `restarts` restarts, is
    /// restarted. A manual stop (the `stopped` file) is checked by the caller.
    pub fn wants_restart(self, exit_code: i32, restarts: u32) -> bool {
        match self {
            Restart::No => false,
            Restart::Always | Restart::UnlessStopped => true,
            Restart::OnFailure(max) => exit_code != 0 && (max == 0 || restarts < max),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Args {
    pub id: String,
    pub bundle: PathBuf,
    pub runtime_root: PathBuf,
    pub state_dir: PathBuf,
    pub log_path: Option<PathBuf>,
    /// Rotate when the log reaches this size (None: never).
    pub log_max_size: Option<u64>,
    pub log_max_files: u32,
    pub tty: bool,
    pub stdin: bool,
    pub restart: Restart,
    pub exit_command: Option<PathBuf>,
    pub exit_command_args: Vec<String>,
    /// A foreground client (`coracle run --rm`) that removes the container itself once it
    /// has read the exit code: (pid, start time in clock ticks since boot). While that
    /// process lives, the exit command is not run: it would tear down the same container at
    /// the same moment.
    pub cleanup_client: Option<(i32, u64)>,
    pub ready_fd: Option<i32>,
    /// Read end of a pipe: after creating the container, wait for one byte on it before
    /// starting the process (the engine connects the network meanwhile); end of file
    /// instead means the start was called off.
    pub start_gate_fd: Option<i32>,
}

pub const USAGE: &str = "usage: coracle-shim --id ID --bundle DIR --runtime-root DIR --state-dir DIR \
[--log-path FILE] [--log-max-size BYTES] [--log-max-files N] [--tty] [--stdin] \
[--restart no|always|unless-stopped|on-failure[:N]] [--exit-command PATH [--exit-command-arg ARG]...] \
[--cleanup-client PID:STARTTIME] [--ready-fd N] [--start-gate-fd N]";

/// Parse a size: bytes, or with a k/m/g suffix (powers of 1024), as Docker's max-size.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let lower = s.trim().to_ascii_lowercase();
    let (num, mult) = match lower.trim_end_matches('b').chars().last() {
        Some('k') => (&lower[..lower.find('k').unwrap_or(0)], 1u64 << 10),
        Some('m') => (&lower[..lower.find('m').unwrap_or(0)], 1 << 20),
        Some('g') => (&lower[..lower.find('g').unwrap_or(0)], 1 << 30),
        _ => (lower.as_str(), 1),
    };
    num.parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .ok_or_else(|| format!("--log-max-size {s:?}: expected a size in bytes (k, m, g allowed)"))
}

impl Args {
    pub fn parse(argv: impl IntoIterator<Item = String>) -> Result<Args, String> {
        let mut id = None;
        let mut bundle = None;
        let mut runtime_root = None;
        let mut state_dir = None;
        let mut a = Args {
            id: String::new(),
            bundle: PathBuf::new(),
            runtime_root: PathBuf::new(),
            state_dir: PathBuf::new(),
            log_path: None,
            log_max_size: None,
            log_max_files: 1,
            tty: false,
            stdin: false,
            restart: Restart::No,
            exit_command: None,
            exit_command_args: Vec::new(),
            cleanup_client: None,
            ready_fd: None,
            start_gate_fd: None,
        };
        let mut it = argv.into_iter();
        while let Some(flag) = it.next() {
            let (name, inline) = match flag.split_once('=') {
                Some((n, v)) if n.starts_with("--") => (n.to_string(), Some(v.to_string())),
                _ => (flag.clone(), None),
            };
            match name.as_str() {
                "--tty" | "-t" => a.tty = true,
                "--stdin" | "-i" => a.stdin = true,
                "--help" | "-h" => return Err(USAGE.to_string()),
                _ => {
                    let value = match inline {
                        Some(v) => v,
                        None => it
                            .next()
                            .ok_or_else(|| format!("{name} needs a value\n{USAGE}"))?,
                    };
                    match name.as_str() {
                        "--id" => id = Some(value),
                        "--bundle" => bundle = Some(PathBuf::from(value)),
                        "--runtime-root" => runtime_root = Some(PathBuf::from(value)),
                        "--state-dir" => state_dir = Some(PathBuf::from(value)),
                        "--log-path" => a.log_path = Some(PathBuf::from(value)),
                        "--log-max-size" => a.log_max_size = Some(parse_size(&value)?),
                        "--log-max-files" => {
                            a.log_max_files =
                                value.parse().ok().filter(|n| *n >= 1).ok_or_else(|| {
                                    format!("--log-max-files {value:?}: expected a number >= 1")
                                })?
                        }
                        "--restart" => a.restart = Restart::parse(&value)?,
                        "--exit-command" => a.exit_command = Some(PathBuf::from(value)),
                        "--exit-command-arg" => a.exit_command_args.push(value),
                        "--cleanup-client" => {
                            a.cleanup_client = Some(
                                value
                                    .split_once(':')
                                    .and_then(|(p, t)| Some((p.parse().ok()?, t.parse().ok()?)))
                                    .ok_or_else(|| {
                                        format!(
                                            "--cleanup-client {value:?}: expected PID:STARTTIME"
                                        )
                                    })?,
                            )
                        }
                        "--ready-fd" => {
                            a.ready_fd =
                                Some(value.parse().ok().filter(|n| *n >= 0).ok_or_else(|| {
                                    format!("--ready-fd {value:?}: expected an fd number")
                                })?)
                        }
                        "--start-gate-fd" => {
                            a.start_gate_fd =
                                Some(value.parse().ok().filter(|n| *n >= 0).ok_or_else(|| {
                                    format!("--start-gate-fd {value:?}: expected an fd number")
                                })?)
                        }
                        _ => return Err(format!("unknown flag {name:?}\n{USAGE}")),
                    }
                }
            }
        }
        let need = |flag: &str| format!("{flag} is required\n{USAGE}");
        a.id = id.ok_or_else(|| need("--id"))?;
        a.bundle = bundle.ok_or_else(|| need("--bundle"))?;
        a.runtime_root = runtime_root.ok_or_else(|| need("--runtime-root"))?;
        a.state_dir = state_dir.ok_or_else(|| need("--state-dir"))?;
        if a.log_path.is_none() && a.log_max_size.is_some() {
            return Err("--log-max-size needs --log-path".into());
        }
        Ok(a)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Args, String> {
        Args::parse(s.split_whitespace().map(String::from))
    }

    #[test]
    fn parses_the_full_command_line() {
        let a = parse(
            "--id c1 --bundle /b --runtime-root /r --state-dir /s --log-path /l --log-max-size 10k \
             --log-max-files 3 --tty --stdin --restart on-failure:2 --exit-command /bin/x \
             --exit-command-arg rm --exit-command-arg -f --cleanup-client 42:1234 --ready-fd 5 --start-gate-fd 6",
        )
        .unwrap();
        assert_eq!(a.id, "c1");
        assert_eq!(a.log_max_size, Some(10240));
        assert_eq!(a.log_max_files, 3);
        assert!(a.tty && a.stdin);
        assert_eq!(a.restart, Restart::OnFailure(2));
        assert_eq!(a.exit_command_args, ["rm", "-f"]);
        assert_eq!(a.cleanup_client, Some((42, 1234)));
        assert_eq!(a.ready_fd, Some(5));
        assert_eq!(a.start_gate_fd, Some(6));
    }

    #[test]
    fn refuses_bad_input() {
        assert!(parse("--bundle /b --runtime-root /r --state-dir /s").is_err());
        assert!(
            parse("--id a --bundle /b --runtime-root /r --state-dir /s --restart sometimes")
                .is_err()
        );
        assert!(parse("--id a --bundle /b --runtime-root /r --state-dir /s --bogus 1").is_err());
        assert!(
            parse("--id a --bundle /b --runtime-root /r --state-dir /s --log-max-files 0").is_err()
        );
    }

    #[test]
    fn restart_policies_decide_like_docker() {
        assert!(!Restart::No.wants_restart(1, 0));
        assert!(Restart::Always.wants_restart(0, 100));
        assert!(Restart::UnlessStopped.wants_restart(0, 0));
        let p = Restart::parse("on-failure:2").unwrap();
        assert!(!p.wants_restart(0, 0));
        assert!(p.wants_restart(1, 1));
        assert!(!p.wants_restart(1, 2));
        assert!(Restart::parse("on-failure").unwrap().wants_restart(3, 1000));
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("100").unwrap(), 100);
        assert_eq!(parse_size("1m").unwrap(), 1 << 20);
        assert_eq!(parse_size("2KB").unwrap(), 2048);
        assert!(parse_size("x").is_err());
    }
}
