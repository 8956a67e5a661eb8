//! `ps`: Docker's columns, filters and formats.

use super::*;

#[derive(Args, Debug)]
pub struct PsArgs {
    /// Show all containers (default shows just running).
    #[arg(short, long)]
    all: bool,
    /// Only display container IDs.
    #[arg(short, long)]
    quiet: bool,
    /// Don't truncate output.
    #[arg(long)]
    no_trunc: bool,
    /// Filter output based on conditions provided (status=, name=, id=, label=, ancestor=).
    #[arg(short, long)]
    filter: Vec<String>,
    /// `table`, `json`, or a Go template.
    #[arg(long)]
    format: Option<String>,
    /// Show the latest created container.
    #[arg(short = 'l', long)]
    latest: bool,
}

fn status_text(rec: &ContainerRecord) -> String {
    let since =
        |t: Option<SystemTime>| format::human_duration(now().saturating_sub(Engine::epoch(t)));
    match rec.state {
        State::Created => "Created".into(),
        State::Running => format!("Up {}", since(rec.started_at)),
        State::Paused => format!("Up {} (Paused)", since(rec.started_at)),
        State::Restarting => format!(
            "Restarting ({}) {} ago",
            rec.exit_code,
            since(rec.finished_at)
        ),
        State::Exited => format!("Exited ({}) {} ago", rec.exit_code, since(rec.finished_at)),
        State::Removing => "Removal In Progress".into(),
        State::Dead => "Dead".into(),
    }
}

pub(super) fn now() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

pub(super) fn endpoints(rec: &ContainerRecord) -> Vec<Value> {
    rec.extra
        .get("endpoints")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

/// `0.0.0.0:8080->80/tcp, …` as docker ps shows published ports.
fn ports_text(rec: &ContainerRecord) -> String {
    let mut out = Vec::new();
    if !matches!(
        rec.state,
        State::Running | State::Paused | State::Restarting
    ) {
        return String::new();
    }
    for ep in endpoints(rec) {
        for p in ep
            .get("ports")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
        {
            out.push(port_line(&p));
        }
    }
    out.join(", ")
}

fn port_line(p: &Value) -> String {
    let ip = p
        .get("host_ip")
        .and_then(Value::as_str)
        .unwrap_or("0.0.0.0");
    let range = |a: &str, b: &str| {
        let (s, e) = (p[a].as_u64().unwrap_or(0), p[b].as_u64().unwrap_or(0));
        if s == e || e == 0 {
            s.to_string()
        } else {
            format!("{s}-{e}")
        }
    };
    let proto = p
        .get("protocol")
        .and_then(Value::as_str)
        .unwrap_or("tcp")
        .to_ascii_lowercase();
    format!(
        "{ip}:{}->{}/{proto}",
        range("host_port_start", "host_port_end"),
        range("container_port_start", "container_port_end")
    )
}

fn command_text(rec: &ContainerRecord) -> String {
    let cfg: Option<ContainerConfig> = serde_json::from_value(rec.config.clone()).ok();
    let args = cfg
        .map(|c| coracle_engine::spec::defaults::command(&c))
        .unwrap_or_default();
    args.join(" ")
}

fn ps_json(rec: &ContainerRecord, no_trunc: bool) -> Value {
    let command = command_text(rec);
    let shown_command = if no_trunc || command.chars().count() <= 20 {
        format!("\"{command}\"")
    } else {
        format!("\"{}…\"", command.chars().take(19).collect::<String>())
    };
    let cfg: Option<ContainerConfig> = serde_json::from_value(rec.config.clone()).ok();
    let labels = cfg
        .map(|c| {
            c.config
                .labels
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default();
    let created = Engine::epoch(Some(rec.created));
    json!({
        "Command": shown_command,
        "CreatedAt": format::go_time_utc(created),
        "ID": if no_trunc { rec.id.clone() } else { rec.short_id().to_string() },
        "Image": rec.image,
        "Labels": labels,
        "LocalVolumes": "0",
        "Mounts": "",
        "Names": rec.name,
        "Networks": rec.extra.get("network_mode").and_then(Value::as_str).unwrap_or(""),
        "Ports": ports_text(rec),
        "RunningFor": format::ago(created),
        "Size": "0B",
        "State": rec.state.as_str(),
        "Status": status_text(rec),
    })
}

fn ps_filter(rec: &ContainerRecord, filters: &[(String, String)]) -> bool {
    filters.iter().all(|(k, v)| match k.as_str() {
        "status" => rec.state.as_str() == v,
        "name" => rec.name.contains(v.trim_start_matches('/')),
        "id" => rec.id.starts_with(v),
        "ancestor" => rec.image == *v || rec.image_id.contains(v),
        "label" => {
            let cfg: Option<ContainerConfig> = serde_json::from_value(rec.config.clone()).ok();
            let labels = cfg.map(|c| c.config.labels).unwrap_or_default();
            match v.split_once('=') {
                Some((lk, lv)) => labels.get(lk).is_some_and(|x| x == lv),
                None => labels.contains_key(v),
            }
        }
        _ => true,
    })
}

pub fn ps(ctx: &Context, args: &PsArgs) -> Result<u8> {
    let mut filters = Vec::new();
    for f in &args.filter {
        let (k, v) = f
            .split_once('=')
            .with_context(|| format!("bad format of filter (expected name=value): {f}"))?;
        if !matches!(k, "status" | "name" | "id" | "label" | "ancestor") {
            bail!("invalid filter '{k}'");
        }
        filters.push((k.to_string(), v.to_string()));
    }
    let engine = open_engine(ctx)?;
    let all = args.all || filters.iter().any(|(k, _)| k == "status");
    let mut recs: Vec<ContainerRecord> = engine
        .list(all)
        .map_err(engine_error)?
        .into_iter()
        .filter(|r| ps_filter(r, &filters))
        .collect();
    recs.sort_by_key(|r| std::cmp::Reverse(r.created));
    if args.latest {
        recs.truncate(1);
    }
    let mut out = io::stdout().lock();
    if args.quiet {
        for r in &recs {
            writeln!(
                out,
                "{}",
                if args.no_trunc {
                    r.id.as_str()
                } else {
                    r.short_id()
                }
            )?;
        }
        return Ok(0);
    }
    match args.format.as_deref() {
        Some(t) if t != "table" => {
            let rows: Vec<Value> = recs.iter().map(|r| ps_json(r, args.no_trunc)).collect();
            write!(
                out,
                "{}",
                format::render_rows(t, &format::PS_COLUMNS, &rows)?
            )?;
        }
        _ => {
            let mut rows = vec![[
                "CONTAINER ID",
                "IMAGE",
                "COMMAND",
                "CREATED",
                "STATUS",
                "PORTS",
                "NAMES",
            ]
            .map(String::from)
            .to_vec()];
            for r in &recs {
                let j = ps_json(r, args.no_trunc);
                let s = |k: &str| j[k].as_str().unwrap_or_default().to_string();
                rows.push(vec![
                    s("ID"),
                    s("Image"),
                    s("Command"),
                    s("RunningFor"),
                    s("Status"),
                    s("Ports"),
                    s("Names"),
                ]);
            }
            write!(out, "{}", table(&rows))?;
        }
    }
    Ok(0)
}
