//! `logs`.

use super::*;

#[derive(Args, Debug)]
pub struct LogsArgs {
    /// Follow log output.
    #[arg(short, long)]
    follow: bool,
    /// Number of lines to show from the end of the logs ("all" for everything).
    #[arg(short = 'n', long, default_value = "all")]
    tail: String,
    /// Show logs since a timestamp (RFC 3339) or relative (e.g. 42m).
    #[arg(long)]
    since: Option<String>,
    /// Show timestamps.
    #[arg(short, long)]
    timestamps: bool,
    container: String,
}

/// `--since`: RFC 3339, a Unix time, or a duration back from now (`10s`, `5m`, `2h`).
fn since_time(value: &str) -> Result<String> {
    if value.contains('T') {
        return Ok(value.to_string());
    }
    let (num, unit) = value.split_at(
        value
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(value.len()),
    );
    let n: u64 = num
        .parse()
        .map_err(|_| bad(format!("invalid value for \"since\": {value}")))?;
    let secs = match unit {
        "" => return Ok(format::rfc3339_utc(n)),
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        _ => return Err(bad(format!("invalid value for \"since\": {value}"))),
    };
    Ok(format::rfc3339_utc(now().saturating_sub(secs)))
}

pub fn logs(ctx: &Context, args: &LogsArgs) -> Result<u8> {
    let engine = open_engine(ctx)?;
    let rec = engine.container(&args.container).map_err(engine_error)?;
    let opts = LogOptions {
        tail: if args.tail == "all" {
            None
        } else {
            Some(
                args.tail
                    .parse()
                    .map_err(|_| bad(format!("invalid --tail {:?}", args.tail)))?,
            )
        },
        since: args.since.as_deref().map(since_time).transpose()?,
        poll: None,
        wake_on_exit_of: None,
    };
    let mut out = io::stdout();
    let mut err = io::stderr();
    let stamp = args.timestamps;
    let emit = |line: &coracle_engine::engine::LogLine| -> io::Result<()> {
        let text = if stamp {
            format!("{} {}", line.time, line.log)
        } else {
            line.log.clone()
        };
        if line.stream == "stderr" {
            err.write_all(text.as_bytes())?;
            err.flush()
        } else {
            out.write_all(text.as_bytes())?;
            out.flush()
        }
    };
    let log = engine.log_path(&rec.id);
    if args.follow {
        let id = rec.id.clone();
        coracle_engine::engine::follow_log(&log, &opts, emit, || {
            engine
                .container(&id)
                .map(|r| !r.state.is_active())
                .unwrap_or(true)
        })?;
    } else {
        let mut emit = emit;
        for line in coracle_engine::engine::read_log(&log, &opts)? {
            emit(&line)?;
        }
    }
    Ok(0)
}
