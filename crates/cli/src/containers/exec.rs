//! `exec` and `attach`.

use super::*;

#[derive(Args, Debug)]
pub struct ExecArgs {
    /// Detached mode: run command in the background.
    #[arg(short, long)]
    detach: bool,
    /// Keep STDIN open even if not attached.
    #[arg(short, long)]
    interactive: bool,
    /// Allocate a pseudo-TTY.
    #[arg(short, long)]
    tty: bool,
    /// Set environment variables.
    #[arg(short, long)]
    env: Vec<String>,
    /// Username or UID (format: <uid>[:<gid>]).
    #[arg(short, long)]
    user: Option<String>,
    /// Working directory inside the container.
    #[arg(short, long)]
    workdir: Option<String>,
    /// Extended privileges for the command.
    #[arg(long)]
    privileged: bool,
    container: String,
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
    command: Vec<String>,
}

fn runtime_binary() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|d| d.join("coracle-runtime")))
        .unwrap_or_else(|| PathBuf::from("coracle-runtime"))
}

pub fn exec(ctx: &Context, args: &ExecArgs) -> Result<u8> {
    let engine = open_engine(ctx)?;
    let rec = engine.container(&args.container).map_err(engine_error)?;
    match rec.state {
        State::Running => {}
        State::Paused => {
            return Err(Exit(
                1,
                format!(
                    "Container {} is paused, unpause the container before exec",
                    rec.id
                ),
            )
            .into())
        }
        _ => return Err(Exit(1, format!("Container {} is not running", rec.id)).into()),
    }
    let mut cmd = std::process::Command::new(runtime_binary());
    cmd.arg("--root").arg(engine.runtime_root()).arg("exec");
    if args.tty {
        cmd.arg("-t");
    }
    if args.detach {
        cmd.arg("-d");
    }
    for e in &args.env {
        let lookup = |k: &str| std::env::var(k).ok();
        cmd.arg("--env")
            .arg(parse::parse_env(e, lookup).map_err(bad)?);
    }
    if let Some(w) = &args.workdir {
        cmd.arg("--cwd").arg(w);
    }
    if let Some(u) = &args.user {
        cmd.arg("--user").arg(resolve_exec_user(&engine, &rec, u)?);
    }
    if args.privileged {
        for cap in coracle_engine::spec::caps::CapSet::all().names() {
            cmd.arg("--cap").arg(cap);
        }
    }
    // Detached, the process gets no stdio of ours (as with docker, its output is dropped):
    // the runtime reports its own errors through --log, which is read once it returns.
    // Sharing a pipe with the process instead would keep this command waiting for the
    // process's end of file.
    let detached_log = args.detach.then(|| {
        ctx.run_root.join(format!(
            "exec-{}-{}.log",
            rec.short_id(),
            std::process::id()
        ))
    });
    if let Some(log) = &detached_log {
        cmd.arg("--log").arg(log);
    }
    cmd.arg(&rec.id).args(&args.command);
    if !args.interactive && !args.tty {
        cmd.stdin(std::process::Stdio::null());
    }
    let out = if let Some(log) = &detached_log {
        let status = cmd
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()?;
        // Log lines read "<time> ERROR <message>": keep the messages.
        let stderr = std::fs::read_to_string(log)
            .unwrap_or_default()
            .lines()
            .map(|l| l.split_once(" ERROR ").map_or(l, |(_, m)| m))
            .map(|l| format!("coracle-runtime: {l}\n"))
            .collect::<String>()
            .into_bytes();
        let _ = std::fs::remove_file(log);
        std::process::Output {
            status,
            stdout: Vec::new(),
            stderr,
        }
    } else {
        cmd.stderr(std::process::Stdio::piped())
            .spawn()?
            .wait_with_output()?
    };
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() && !stderr.trim().is_empty() {
        let lower = stderr.to_ascii_lowercase();
        if lower.contains("not found") || lower.contains("no such file") {
            return Err(Exit(127, format!("OCI runtime exec failed: {}", stderr.trim())).into());
        }
        if lower.contains("permission denied") {
            return Err(Exit(126, format!("OCI runtime exec failed: {}", stderr.trim())).into());
        }
        eprint!("{stderr}");
    }
    Ok(u8::try_from(out.status.code().unwrap_or(1).clamp(0, 255)).unwrap_or(1))
}

/// `-u name[:group]` resolved against the container's /etc/passwd and /etc/group.
fn resolve_exec_user(engine: &Engine, rec: &ContainerRecord, user: &str) -> Result<String> {
    let (u, g) = user.split_once(':').unwrap_or((user, ""));
    if u.chars().all(|c| c.is_ascii_digit())
        && (g.is_empty() || g.chars().all(|c| c.is_ascii_digit()))
    {
        return Ok(if g.is_empty() {
            format!("{u}:0")
        } else {
            user.to_string()
        });
    }
    let rootfs = engine.images().snapshotter().dir(&rec.id)?.join("merged");
    let passwd =
        coracle_engine::spec::user::read_in_root(&rootfs, "/etc/passwd")?.unwrap_or_default();
    let entry = coracle_engine::spec::user::parse_passwd(&passwd)
        .into_iter()
        .find(|e| e.name == u)
        .ok_or_else(|| {
            Exit(
                126,
                format!("unable to find user {u}: no matching entries in passwd file"),
            )
        })?;
    let gid = if g.is_empty() {
        entry.gid
    } else if let Ok(n) = g.parse() {
        n
    } else {
        let group =
            coracle_engine::spec::user::read_in_root(&rootfs, "/etc/group")?.unwrap_or_default();
        coracle_engine::spec::user::parse_group(&group)
            .into_iter()
            .find(|e| e.name == g)
            .map(|e| e.gid)
            .ok_or_else(|| Exit(126, format!("unable to find group {g}")))?
    };
    Ok(format!("{}:{gid}", entry.uid))
}

// --- attach ----------------------------------------------------------------------------------

#[derive(Args, Debug)]
pub struct AttachArgs {
    /// Do not attach STDIN.
    #[arg(long = "no-stdin")]
    no_stdin: bool,
    container: String,
}

/// `docker attach`: the shim's attach socket, live output from now on (multiplexed frames
/// without a tty, raw bytes with one), our stdin to the container when it was started with
/// `-i`; returns the container's exit code once it ends.
pub fn attach(ctx: &Context, args: &AttachArgs) -> Result<u8> {
    let engine = open_engine(ctx)?;
    let rec = engine.container(&args.container).map_err(engine_error)?;
    if rec.state != State::Running {
        return Err(Exit(
            1,
            "You cannot attach to a stopped container, start it first".into(),
        )
        .into());
    }
    let cfg = engine.container_config(&rec).map_err(engine_error)?;
    let stdin = cfg.config.open_stdin && !args.no_stdin;
    let sock = engine.shim_dir(&rec.id).join("attach.sock");
    let mut stream =
        UnixStream::connect(&sock).with_context(|| format!("connect {}", sock.display()))?;
    writeln!(
        stream,
        "{}",
        json!({"stdin": stdin, "stdout": true, "stderr": true})
    )?;
    let _raw = if cfg.config.tty {
        RawTerminal::enter()
    } else {
        None
    };
    if stdin {
        let mut writer = stream.try_clone()?;
        std::thread::spawn(move || {
            let _ = io::copy(&mut io::stdin().lock(), &mut writer);
            let _ = writer.shutdown(std::net::Shutdown::Write);
        });
    }
    if cfg.config.tty {
        io::copy(&mut stream, &mut io::stdout().lock())?;
    } else {
        demux(&mut stream)?;
    }
    let rec = engine
        .wait_exit(&rec.id, Some(std::time::Duration::from_secs(10)))
        .map_err(engine_error)?;
    Ok(u8::try_from(rec.exit_code.clamp(0, 255)).unwrap_or(255))
}

/// Docker's stream framing: [stream, 0, 0, 0, big-endian u32 length] then the payload.
fn demux(stream: &mut impl Read) -> io::Result<()> {
    let mut header = [0u8; 8];
    loop {
        match stream.read_exact(&mut header) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e),
        }
        let len = u32::from_be_bytes([header[4], header[5], header[6], header[7]]) as usize;
        let mut payload = vec![0u8; len];
        stream.read_exact(&mut payload)?;
        if header[0] == 2 {
            let mut err = io::stderr().lock();
            err.write_all(&payload)?;
            err.flush()?;
        } else {
            let mut out = io::stdout().lock();
            out.write_all(&payload)?;
            out.flush()?;
        }
    }
}
