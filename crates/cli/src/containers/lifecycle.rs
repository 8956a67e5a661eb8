//! start, stop, restart, kill, rm, pause, unpause, wait, rename, and the shim's call-back.

use super::*;

#[derive(Args, Debug)]
pub struct StartArgs {
    /// Attach STDOUT/STDERR and forward signals.
    #[arg(short = 'a', long)]
    attach: bool,
    /// Attach container's STDIN.
    #[arg(short = 'i', long)]
    interactive: bool,
    #[arg(required = true)]
    containers: Vec<String>,
}

/// Runs `op` for each argument, printing the argument on success and `Error response …` on
/// failure, as docker does; the exit status is 1 if any failed.
fn each(
    names: &[String],
    mut op: impl FnMut(&str) -> std::result::Result<(), EngineError>,
) -> Result<u8> {
    let mut code = 0;
    for name in names {
        match op(name) {
            Ok(()) => println!("{name}"),
            Err(e) => {
                eprintln!("Error response from daemon: {e}");
                code = 1;
            }
        }
    }
    Ok(code)
}

pub fn start(ctx: &Context, args: &StartArgs) -> Result<u8> {
    let engine = open_engine(ctx)?;
    if args.attach || args.interactive {
        if args.containers.len() != 1 {
            bail!("you cannot start and attach multiple containers at once");
        }
        let rec = engine
            .start(&args.containers[0])
            .map_err(engine_error)?
            .record;
        let cfg = engine.container_config(&rec).map_err(engine_error)?;
        return attach_and_wait(&engine, &rec, args.interactive, cfg.config.tty);
    }
    each(&args.containers, |n| engine.start(n).map(|_| ()))
}

#[derive(Args, Debug)]
pub struct StopArgs {
    /// Seconds to wait before killing the container.
    #[arg(short = 't', long = "time", alias = "timeout")]
    time: Option<u64>,
    #[arg(required = true)]
    containers: Vec<String>,
}

pub fn stop(ctx: &Context, args: &StopArgs) -> Result<u8> {
    let engine = open_engine(ctx)?;
    each(&args.containers, |n| engine.stop(n, args.time).map(|_| ()))
}

pub fn restart(ctx: &Context, args: &StopArgs) -> Result<u8> {
    let engine = open_engine(ctx)?;
    each(&args.containers, |n| {
        engine.stop(n, args.time)?;
        engine.start(n).map(|_| ())
    })
}

#[derive(Args, Debug)]
pub struct KillArgs {
    /// Signal to send to the container.
    #[arg(short = 's', long, default_value = "KILL")]
    signal: String,
    #[arg(required = true)]
    containers: Vec<String>,
}

pub fn kill(ctx: &Context, args: &KillArgs) -> Result<u8> {
    let n = parse::parse_signal(&args.signal).map_err(bad)?;
    let signal =
        Signal::try_from(n).map_err(|_| bad(format!("invalid signal: {}", args.signal)))?;
    let engine = open_engine(ctx)?;
    each(&args.containers, |c| engine.kill(c, signal).map(|_| ()))
}

#[derive(Args, Debug)]
pub struct RmArgs {
    /// Force the removal of a running container (uses SIGKILL).
    #[arg(short, long)]
    force: bool,
    /// Remove anonymous volumes associated with the container.
    #[arg(short, long)]
    volumes: bool,
    #[arg(required = true)]
    containers: Vec<String>,
}

pub fn rm(ctx: &Context, args: &RmArgs) -> Result<u8> {
    let engine = open_engine(ctx)?;
    each(&args.containers, |c| {
        engine.remove(c, args.force, args.volumes)
    })
}

#[derive(Args, Debug)]
pub struct NamesArgs {
    #[arg(required = true)]
    containers: Vec<String>,
}

pub fn pause(ctx: &Context, args: &NamesArgs) -> Result<u8> {
    let engine = open_engine(ctx)?;
    each(&args.containers, |c| engine.pause(c).map(|_| ()))
}

pub fn unpause(ctx: &Context, args: &NamesArgs) -> Result<u8> {
    let engine = open_engine(ctx)?;
    each(&args.containers, |c| engine.unpause(c).map(|_| ()))
}

pub fn wait(ctx: &Context, args: &NamesArgs) -> Result<u8> {
    let engine = open_engine(ctx)?;
    let mut code = 0;
    for name in &args.containers {
        match engine
            .container(name)
            .and_then(|r| engine.wait_exit(&r.id, None))
        {
            Ok(r) => println!("{}", r.exit_code),
            Err(e) => {
                eprintln!("Error response from daemon: {e}");
                code = 1;
            }
        }
    }
    Ok(code)
}

#[derive(Args, Debug)]
pub struct RenameArgs {
    container: String,
    new_name: String,
}

pub fn rename(ctx: &Context, args: &RenameArgs) -> Result<u8> {
    let engine = open_engine(ctx)?;
    let rec = engine.container(&args.container).map_err(engine_error)?;
    // Outside run/create docker's CLI exits 1 for what the daemon refuses.
    engine
        .store()
        .rename(&rec.id, &args.new_name)
        .map_err(|e| Exit(1, e.to_string()))?;
    Ok(0)
}

/// The shim's call-back when a container's process ended for good: teardown, and removal
/// for `--rm` (unless the attached client removes it).
pub fn container_cleanup(ctx: &Context, id: &str) -> Result<u8> {
    let engine = open_engine(ctx)?;
    let rec = match engine.store().get(id) {
        Ok(r) => r,
        Err(_) => return Ok(0),
    };
    engine.cleanup(&rec.id).map_err(engine_error)?;
    let cfg = engine.container_config(&rec).map_err(engine_error)?;
    // The foreground `run --rm` that said it removes the container, if it still runs.
    let by_client = rec.extra.get("removed_by_client").is_some_and(|c| {
        let pid = c["pid"].as_i64().and_then(|p| i32::try_from(p).ok());
        pid.is_some_and(|p| {
            coracle_runtime::state::process_start_time(p).is_some()
                && coracle_runtime::state::process_start_time(p) == c["start"].as_u64()
        })
    });
    if cfg.host_config.auto_remove && !by_client {
        engine.remove(&rec.id, true, true).map_err(engine_error)?;
    }
    Ok(0)
}
