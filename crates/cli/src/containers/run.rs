//! `create` and `run`: the container made from the flags, started, followed in the foreground.

use super::*;

/// Creates the container, pulling the image first when it is missing (as docker does).
fn create_from_flags(ctx: &Context, engine: &Engine, f: &CreateFlags) -> Result<ContainerRecord> {
    // The image is the first argument that is not a known flag; one that looks like a flag
    // was a flag this command does not have.
    if f.image().starts_with('-') {
        return Err(Exit(
            125,
            format!("unknown flag: {}\nSee 'coracle run --help'.", f.image()),
        )
        .into());
    }
    let config = container_config(f)?;
    let missing = engine.images().resolve(f.image()).is_err();
    if missing || f.pull == "always" {
        if f.pull == "never" {
            return Err(Exit(125, format!("No such image: {}", f.image())).into());
        }
        let reference = f
            .image()
            .parse::<coracle_image::reference::Reference>()
            .map_err(|e| Exit(125, e.to_string()))?;
        if missing {
            eprintln!("Unable to find image '{}' locally", reference.familiar());
        }
        crate::pull::pull(ctx, engine.images(), f.image(), &reference, None, false)
            .map_err(|e| Exit(125, format!("{e:#}")))?;
    }
    engine
        .create(CreateRequest {
            name: f.name.clone(),
            image: f.image().to_string(),
            config,
        })
        .map_err(engine_error)
}

pub fn create(ctx: &Context, f: &CreateFlags) -> Result<u8> {
    let engine = open_engine(ctx)?;
    let rec = create_from_flags(ctx, &engine, f)?;
    println!("{}", rec.id);
    Ok(0)
}

#[derive(Args, Debug)]
pub struct RunArgs {
    /// Run container in background and print container ID.
    #[arg(short = 'd', long)]
    detach: bool,
    #[command(flatten)]
    flags: CreateFlags,
}

pub fn run(ctx: &Context, args: &RunArgs) -> Result<u8> {
    let engine = open_engine(ctx)?;
    let rec = create_from_flags(ctx, &engine, &args.flags)?;
    if !args.detach && args.flags.rm {
        // This process removes the container after reading its exit code. While it lives,
        // the shim does not start its call-back (which would tear the same container down
        // at the same moment); if it dies first, the call-back removes the container.
        let mut extra = rec.extra.clone();
        let me = std::process::id() as i32;
        extra["removed_by_client"] = json!({
            "pid": me,
            "start": coracle_runtime::state::process_start_time(me),
        });
        engine
            .store()
            .update_record(
                &rec.id,
                coracle_engine::store::RecordUpdate {
                    extra: Some(extra),
                    ..Default::default()
                },
            )
            .map_err(|e| engine_error(e.into()))?;
    }
    let started = engine.start(&rec.id);
    let rec = match started {
        Ok(o) => o.record,
        Err(e) => {
            let code = e.exit_code();
            if args.flags.rm {
                let _ = engine.remove(&rec.id, true, true);
            }
            return Err(Exit(code, e.to_string()).into());
        }
    };
    if args.detach {
        println!("{}", rec.id);
        return Ok(0);
    }
    let code = attach_and_wait(&engine, &rec, args.flags.interactive, args.flags.tty)?;
    if args.flags.rm {
        engine.remove(&rec.id, true, true).map_err(engine_error)?;
    }
    Ok(code)
}

/// Streams the container's output (from its log, so nothing written before we looked is
/// lost) and, with `-i`, our stdin to it; returns its exit code.
pub(super) fn attach_and_wait(
    engine: &Engine,
    rec: &ContainerRecord,
    stdin: bool,
    tty: bool,
) -> Result<u8> {
    let _raw = if tty { RawTerminal::enter() } else { None };
    if tty {
        resize_from_terminal(engine, &rec.id);
    }
    if stdin {
        let sock = engine.shim_dir(&rec.id).join("attach.sock");
        if let Ok(mut stream) = UnixStream::connect(&sock) {
            let hello = b"{\"stdin\":true,\"stdout\":false,\"stderr\":false}\n";
            if stream.write_all(hello).is_ok() {
                std::thread::spawn(move || {
                    let mut buf = [0u8; 8192];
                    let mut input = io::stdin().lock();
                    loop {
                        match input.read(&mut buf) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => {
                                if stream.write_all(&buf[..n]).is_err() {
                                    break;
                                }
                            }
                        }
                    }
                    let _ = stream.shutdown(std::net::Shutdown::Write);
                });
            }
        }
    }
    let log = engine.log_path(&rec.id);
    let id = rec.id.clone();
    let mut finished: Option<ContainerRecord> = None;
    let mut out = io::stdout();
    let mut err = io::stderr();
    // The exit of the container's process ends a pause at once: the time to notice it is
    // part of every short run.
    let opts = LogOptions {
        poll: Some(std::time::Duration::from_millis(5)),
        wake_on_exit_of: (rec.pid > 0).then_some(rec.pid),
        ..Default::default()
    };
    coracle_engine::engine::follow_log(
        &log,
        &opts,
        |line| {
            if line.stream == "stderr" {
                err.write_all(line.log.as_bytes())?;
                err.flush()
            } else {
                out.write_all(line.log.as_bytes())?;
                out.flush()
            }
        },
        || {
            // Cheap check first (the shim's status file); the database only once it says exited.
            let running = engine.shim_status(&id).is_some_and(|s| s.state != "exited");
            if running && engine.shim_running(&id) {
                return false;
            }
            match engine.container(&id) {
                Ok(r) if r.state.is_active() => false,
                Ok(r) => {
                    finished = Some(r);
                    true
                }
                Err(_) => true,
            }
        },
    )?;
    let code = finished.map_or(0, |r| r.exit_code);
    Ok(u8::try_from(code.clamp(0, 255)).unwrap_or(255))
}

fn resize_from_terminal(engine: &Engine, id: &str) {
    let Some(ws) = coracle_runtime::sys::raw::winsize(0) else {
        return;
    };
    let sock = engine.shim_dir(id).join("ctl.sock");
    if let Ok(mut s) = UnixStream::connect(sock) {
        let _ = writeln!(s, "{}", json!({"resize": {"height": ws.0, "width": ws.1}}));
        let mut reply = String::new();
        let _ = s.read_to_string(&mut reply);
    }
}

/// Puts the controlling terminal into raw mode while alive.
pub(super) struct RawTerminal {
    saved: nix::sys::termios::Termios,
}

impl RawTerminal {
    pub(super) fn enter() -> Option<RawTerminal> {
        use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg};
        let stdin = io::stdin();
        let saved = tcgetattr(&stdin).ok()?;
        let mut raw = saved.clone();
        cfmakeraw(&mut raw);
        tcsetattr(&stdin, SetArg::TCSANOW, &raw).ok()?;
        Some(RawTerminal { saved })
    }
}

impl Drop for RawTerminal {
    fn drop(&mut self) {
        let _ = nix::sys::termios::tcsetattr(
            io::stdin(),
            nix::sys::termios::SetArg::TCSANOW,
            &self.saved,
        );
    }
}
