//! Argument parsing (runc's flags) and dispatch.

mod commands;
mod logging;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "coracle-runtime",
    version,
    about = "Coracle's OCI runtime (runc-compatible command line)"
)]
pub struct Cli {
    /// Directory for container state.
    #[arg(long, global = true, default_value = "/run/coracle-runtime")]
    pub root: PathBuf,
    /// Write log lines to this file instead of stderr.
    #[arg(long, global = true)]
    pub log: Option<PathBuf>,
    /// Log format: text or json.
    #[arg(long = "log-format", global = true, default_value = "text")]
    pub log_format: String,
    /// Log at debug level.
    #[arg(long, global = true)]
    pub debug: bool,
    /// Accepted for compatibility; Coracle drives cgroupfs directly.
    #[arg(long = "systemd-cgroup", global = true)]
    pub systemd_cgroup: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(clap::Args, Debug)]
pub struct CreateArgs {
    /// Bundle directory (holds config.json).
    #[arg(short = 'b', long, default_value = ".")]
    pub bundle: PathBuf,
    /// Unix socket to send the pty master to, when process.terminal is true.
    #[arg(long = "console-socket")]
    pub console_socket: Option<PathBuf>,
    /// Write the container's init pid here.
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    /// Use MS_MOVE + chroot instead of pivot_root (for ramfs roots).
    #[arg(long = "no-pivot")]
    pub no_pivot: bool,
    /// Keep fds 3..3+N open in the container.
    #[arg(long = "preserve-fds", default_value_t = 0)]
    pub preserve_fds: u32,
    /// Accepted for compatibility.
    #[arg(long = "no-new-keyring")]
    pub no_new_keyring: bool,
    pub id: String,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create a container: set everything up and wait for `start`.
    Create(CreateArgs),
    /// Run the user's program of a created container.
    Start { id: String },
    /// Create and start a container; wait for it unless --detach.
    Run {
        #[command(flatten)]
        create: CreateArgs,
        #[arg(short = 'd', long)]
        detach: bool,
        /// Keep the container's state after it exits (runc's --keep).
        #[arg(long)]
        keep: bool,
    },
    /// Print the container's state JSON.
    State { id: String },
    /// Send a signal (default SIGTERM) to the container's init.
    Kill {
        id: String,
        signal: Option<String>,
        /// Signal every process in the container.
        #[arg(short, long)]
        all: bool,
    },
    /// Delete a container (its state, cgroup), running poststop hooks.
    Delete {
        #[arg(short, long)]
        force: bool,
        id: String,
    },
    /// Run a process in a running container.
    Exec(commands::ExecArgs),
    /// Print a default config.json.
    Spec {
        #[arg(short = 'b', long, default_value = ".")]
        bundle: PathBuf,
        /// A spec for a rootless container.
        #[arg(long)]
        rootless: bool,
    },
    /// Print the features this runtime supports (JSON).
    Features,
    /// List the processes of a container.
    Ps {
        #[arg(short, long, default_value = "table")]
        format: String,
        id: String,
        /// Options passed to ps(1).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        ps_args: Vec<String>,
    },
    /// Freeze every process of a container.
    Pause { id: String },
    /// Thaw a paused container.
    Resume { id: String },
    /// List containers.
    List {
        #[arg(short, long, default_value = "table")]
        format: String,
        #[arg(short, long)]
        quiet: bool,
    },
}

/// Parse, set up logging, run; the process exit code.
pub fn main() -> i32 {
    let cli = Cli::parse();
    if let Err(e) = logging::init(&cli) {
        eprintln!("coracle-runtime: {e}");
        return 1;
    }
    if matches!(
        cli.command,
        Command::Create(_) | Command::Run { .. } | Command::Exec(_)
    ) {
        // Before any process enters a container (see sealed_exe). Returns only on
        // failure.
        if let Err(e) = coracle_runtime::sealed_exe::ensure_sealed(&cli.root) {
            if cli.log.is_some() {
                tracing::error!("{e}");
            }
            eprintln!("coracle-runtime: {e}");
            return 1;
        }
    }
    match commands::run(&cli) {
        Ok(code) => code,
        Err(e) => {
            let msg = error_text(&e);
            // Engines read the error from --log (runc's convention); a person reads
            // stderr. Without --log the logger writes to stderr: print once.
            if cli.log.is_some() {
                tracing::error!("{msg}");
            }
            eprintln!("coracle-runtime: {msg}");
            1
        }
    }
}

/// The error and its causes, joined with ": ", skipping a cause whose text the
/// message already contains (library errors often render their source themselves).
fn error_text(e: &anyhow::Error) -> String {
    let mut msg = e.to_string();
    for cause in e.chain().skip(1) {
        let text = cause.to_string();
        if !msg.contains(&text) {
            msg.push_str(": ");
            msg.push_str(&text);
        }
    }
    msg
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn command_line_definition_is_consistent() {
        // Catches clashing flag names (e.g. a global and a subcommand flag) that
        // would otherwise only panic when that subcommand is used.
        super::Cli::command().debug_assert();
    }

    #[test]
    fn error_causes_are_not_repeated() {
        let inner = std::io::Error::other("EPERM");
        let e = anyhow::Error::new(inner).context("mount /proc: EPERM");
        assert_eq!(super::error_text(&e), "mount /proc: EPERM");
        let e = anyhow::anyhow!("disk full").context("write state.json");
        assert_eq!(super::error_text(&e), "write state.json: disk full");
    }
}
