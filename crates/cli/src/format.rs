//! Output shapes shared by the commands: Docker's human sizes and durations, and its
//! column tables (a tabwriter with three spaces of padding).

use std::time::{SystemTime, UNIX_EPOCH};

use crate::gotemplate::{self, Template};

/// Sizes as Docker prints them by default: decimal units, four significant digits (`4.262MB`).
pub fn human_size(bytes: u64) -> String {
    human_size_precision(bytes, 4)
}

/// Decimal units with `precision` significant digits (`docker images` uses 3: `4.26MB`).
pub fn human_size_precision(bytes: u64, precision: usize) -> String {
    scaled_size(
        bytes,
        1000.0,
        &["B", "kB", "MB", "GB", "TB", "PB", "EB"],
        precision,
    )
}

/// Binary units with four significant digits, as Docker's `units.BytesSize` (`1.921GiB`).
pub fn bytes_size(bytes: u64) -> String {
    scaled_size(
        bytes,
        1024.0,
        &["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"],
        4,
    )
}

/// `bytes` in the largest unit of `units` (each `base` times the one before) that keeps the
/// value at least 1, with `precision` significant digits and trailing zeros dropped (Go's
/// `%.<precision>g`, which Docker's size helpers use).
fn scaled_size(bytes: u64, base: f64, units: &[&str], precision: usize) -> String {
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= base && unit < units.len() - 1 {
        value /= base;
        unit += 1;
    }
    format!(
        "{}{}",
        crate::gotemplate::go_g(value, precision),
        units[unit]
    )
}

/// A prune report's section, as docker prints it: `heading`, one line per entry (each with
/// `prefix`), then a blank line; nothing at all when nothing was removed.
pub fn write_deleted(
    out: &mut impl std::io::Write,
    heading: &str,
    prefix: &str,
    entries: &[impl std::fmt::Display],
) -> std::io::Result<()> {
    if entries.is_empty() {
        return Ok(());
    }
    writeln!(out, "{heading}")?;
    for e in entries {
        writeln!(out, "{prefix}{e}")?;
    }
    writeln!(out)
}

/// A prune report's last line.
pub fn write_reclaimed(out: &mut impl std::io::Write, bytes: u64) -> std::io::Result<()> {
    writeln!(out, "Total reclaimed space: {}", human_size(bytes))
}

/// How long ago, in Docker's words (`Less than a second`, `About a minute`, `3 weeks`).
pub fn human_duration(seconds: u64) -> String {
    let s = seconds;
    let plural = |n: u64, unit: &str| {
        if n == 1 {
            format!("1 {unit}")
        } else {
            format!("{n} {unit}s")
        }
    };
    match s {
        0 => "Less than a second".to_string(),
        1..=59 => plural(s, "second"),
        60..=119 => "About a minute".to_string(),
        120..=3599 => plural(s / 60, "minute"),
        3600..=7199 => "About an hour".to_string(),
        7200..=172_799 => plural(s / 3600, "hour"),
        172_800..=1_209_599 => plural(s / 86_400, "day"),
        1_209_600..=5_183_999 => plural(s / 604_800, "week"),
        5_184_000..=63_071_999 => plural(s / 2_592_000, "month"),
        _ => plural(s / 31_536_000, "year"),
    }
}

/// `<duration> ago` for a time in seconds since the epoch.
pub fn ago(epoch_seconds: u64) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    format!("{} ago", human_duration(now.saturating_sub(epoch_seconds)))
}

/// Parses RFC 3339 (`2024-01-02T03:04:05.123Z`, `+01:00` offsets) into whole seconds since
/// the epoch.
pub fn parse_rfc3339(text: &str) -> Option<u64> {
    let nanos = coracle_engine::engine::rfc3339_nanos(text)?;
    u64::try_from(nanos.div_euclid(1_000_000_000)).ok()
}

/// Columns padded like Docker's tabwriter (minimum width 10, padding 3): each column as wide
/// as its widest cell plus three spaces, and at least ten; the last column is not padded.
pub fn table(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut widths = vec![0; columns];
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            line.push_str(cell);
            if i + 1 < row.len() {
                let pad = (widths[i] + 3).max(10) - cell.chars().count();
                line.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_match_docker() {
        assert_eq!(human_size(0), "0B");
        assert_eq!(human_size(999), "999B");
        assert_eq!(human_size(4_261_602), "4.262MB");
        assert_eq!(human_size(1_000_000), "1MB");
        assert_eq!(human_size(187_700_000), "187.7MB");
        assert_eq!(human_size(1_234_567_890), "1.235GB");
        assert_eq!(human_size_precision(4_261_602, 3), "4.26MB");
        assert_eq!(human_size_precision(187_700_000, 3), "188MB");
    }

    #[test]
    fn durations_match_docker() {
        assert_eq!(human_duration(0), "Less than a second");
        assert_eq!(human_duration(1), "1 second");
        assert_eq!(human_duration(90), "About a minute");
        assert_eq!(human_duration(3 * 3600), "3 hours");
        assert_eq!(human_duration(3 * 86_400), "3 days");
        assert_eq!(human_duration(15 * 86_400), "2 weeks");
        assert_eq!(human_duration(70 * 86_400), "2 months");
        assert_eq!(human_duration(800 * 86_400), "2 years");
    }

    #[test]
    fn rfc3339_parses() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_rfc3339("2024-01-01T00:00:00Z"), Some(1_704_067_200));
        assert_eq!(
            parse_rfc3339("2024-01-01T01:00:00.5+01:00"),
            Some(1_704_067_200)
        );
        assert_eq!(parse_rfc3339("yesterday"), None);
    }

    #[test]
    fn tables_pad_like_tabwriter() {
        let rows = vec![
            vec!["REPOSITORY".into(), "TAG".into()],
            vec!["busybox".into(), "latest".into()],
        ];
        assert_eq!(table(&rows), "REPOSITORY   TAG\nbusybox      latest\n");
        let rows = vec![
            vec!["A".into(), "TAG".into(), "X".into()],
            vec!["b".into(), "latest".into(), "y".into()],
        ];
        assert_eq!(
            table(&rows),
            "A         TAG       X\nb         latest    y\n"
        );
    }
}

/// `2006-01-02 15:04:05 +0000 UTC`, Go's default time format, for a time in epoch seconds.
pub fn go_time_utc(epoch_seconds: u64) -> String {
    let (y, m, d, hh, mm, ss) = civil(epoch_seconds);
    format!("{y:04}-{m:02}-{d:02} {hh:02}:{mm:02}:{ss:02} +0000 UTC")
}

/// `2006-01-02T15:04:05Z`, RFC 3339 in UTC.
pub fn rfc3339_utc(epoch_seconds: u64) -> String {
    let (y, m, d, hh, mm, ss) = civil(epoch_seconds);
    format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}Z")
}

/// RFC 3339 in UTC with nanoseconds, trailing zeros of the fraction dropped (Go's
/// RFC3339Nano, which Docker's inspect prints): `2006-01-02T15:04:05.9999Z`.
pub fn rfc3339_nano_utc(t: std::time::SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let whole = rfc3339_utc(d.as_secs());
    let frac = format!("{:09}", d.subsec_nanos());
    let frac = frac.trim_end_matches('0');
    if frac.is_empty() {
        whole
    } else {
        format!("{}.{frac}Z", whole.trim_end_matches('Z'))
    }
}

/// Calendar fields of a UTC time (the inverse of the day count in [`parse_rfc3339`]).
fn civil(epoch_seconds: u64) -> (i64, i64, i64, i64, i64, i64) {
    let secs = epoch_seconds as i64;
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d, rem / 3600, rem % 3600 / 60, rem % 60)
}

/// JSON with Docker's four-space indentation.
pub fn pretty_json(value: &impl serde::Serialize) -> String {
    let mut out = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut out, fmt);
    value.serialize(&mut ser).expect("JSON values serialize");
    String::from_utf8(out).expect("serde_json writes UTF-8")
}

/// What every `inspect` prints: the objects as one JSON array with Docker's indentation, or
/// each through a `--format` Go template (`json` means the array). As in Docker, a missing
/// field prints `<no value>`.
pub fn print_inspect(found: &[serde_json::Value], format: Option<&str>) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    match format {
        None | Some("json") => writeln!(out, "{}", pretty_json(&found))?,
        Some(t) => {
            let template = Template::parse("", t).map_err(template_error)?;
            for v in found {
                writeln!(out, "{}", template.execute(v).map_err(template_error)?)?;
            }
        }
    }
    Ok(())
}

/// Docker's prefix for a template that fails to parse or to run.
fn template_error(e: gotemplate::Error) -> anyhow::Error {
    anyhow::Error::new(e).context("template parsing error")
}

/// The rows of a list command (`ps`, `images`, `network ls`, `volume ls`): the title of each
/// field's column in `table` output, and the command's default table.
pub struct Columns {
    pub headers: &'static [(&'static str, &'static str)],
    pub default_table: &'static str,
}

pub const PS_COLUMNS: Columns = Columns {
    headers: &[
        ("Command", "COMMAND"),
        ("CreatedAt", "CREATED AT"),
        ("ID", "CONTAINER ID"),
        ("Image", "IMAGE"),
        ("Labels", "LABELS"),
        ("LocalVolumes", "LOCAL VOLUMES"),
        ("Mounts", "MOUNTS"),
        ("Names", "NAMES"),
        ("Networks", "NETWORKS"),
        ("Ports", "PORTS"),
        ("RunningFor", "CREATED"),
        ("Size", "SIZE"),
        ("State", "STATE"),
        ("Status", "STATUS"),
    ],
    default_table:
        "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}",
};

pub const IMAGES_COLUMNS: Columns = Columns {
    headers: &[
        ("Containers", "CONTAINERS"),
        ("CreatedAt", "CREATED AT"),
        ("CreatedSince", "CREATED"),
        ("Digest", "DIGEST"),
        ("ID", "IMAGE ID"),
        ("Repository", "REPOSITORY"),
        ("SharedSize", "SHARED SIZE"),
        ("Size", "SIZE"),
        ("Tag", "TAG"),
        ("UniqueSize", "UNIQUE SIZE"),
        ("VirtualSize", "SIZE"),
    ],
    default_table: "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}",
};

pub const NETWORK_COLUMNS: Columns = Columns {
    headers: &[
        ("CreatedAt", "CREATED AT"),
        ("Driver", "DRIVER"),
        ("ID", "NETWORK ID"),
        ("IPv4", "IPV4"),
        ("IPv6", "IPV6"),
        ("Internal", "INTERNAL"),
        ("Labels", "LABELS"),
        ("Name", "NAME"),
        ("Scope", "SCOPE"),
    ],
    default_table: "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}",
};

pub const VOLUME_COLUMNS: Columns = Columns {
    headers: &[
        ("Availability", "AVAILABILITY"),
        ("Driver", "DRIVER"),
        ("Group", "GROUP"),
        ("Labels", "LABELS"),
        ("Links", "LINKS"),
        ("Mountpoint", "MOUNTPOINT"),
        ("Name", "VOLUME NAME"),
        ("Scope", "SCOPE"),
        ("Size", "SIZE"),
        ("Status", "STATUS"),
    ],
    default_table: "table {{.Driver}}\t{{.Name}}",
};

pub const STATS_COLUMNS: Columns = Columns {
    headers: &[
        ("BlockIO", "BLOCK I/O"),
        ("CPUPerc", "CPU %"),
        ("Container", "CONTAINER"),
        ("ID", "CONTAINER ID"),
        ("MemPerc", "MEM %"),
        ("MemUsage", "MEM USAGE / LIMIT"),
        ("Name", "NAME"),
        ("NetIO", "NET I/O"),
        ("PIDs", "PIDS"),
    ],
    default_table:
        "table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}",
};

/// A list command's `--format`, as Docker reads it:
/// - `json`: each row as one line of JSON;
/// - `table` alone: the command's default table;
/// - `table TEMPLATE`: a header line made by running the template over the column titles,
///   then a line per row, with tab-separated cells aligned as [`table`] aligns them;
/// - anything else: the template, once per row, each followed by a newline.
///
/// `\t` and `\n` written literally in the format become a tab and a newline. The template
/// is parsed once; a field a row does not have is an error, as it is in Docker.
pub fn render_rows(
    format: &str,
    columns: &Columns,
    rows: &[serde_json::Value],
) -> anyhow::Result<String> {
    if format == "json" {
        return Ok(rows.iter().map(|r| format!("{r}\n")).collect());
    }
    let (is_table, body) = match format.strip_prefix("table") {
        Some(rest) if rest.trim_matches(' ').is_empty() => (
            true,
            columns
                .default_table
                .strip_prefix("table")
                .expect("default tables start with `table`"),
        ),
        Some(rest) => (true, rest),
        None => (false, format),
    };
    let body = body
        .trim_matches(' ')
        .replace("\\t", "\t")
        .replace("\\n", "\n");
    let template = Template::parse("", &body).map_err(template_error)?;
    let strict = gotemplate::Options {
        missing_key_error: true,
        header: false,
    };
    let mut text = String::new();
    for row in rows {
        text.push_str(&template.execute_with(row, strict).map_err(template_error)?);
        text.push('\n');
    }
    if !is_table {
        return Ok(text);
    }
    let titles: serde_json::Map<String, serde_json::Value> = columns
        .headers
        .iter()
        .map(|(field, title)| (field.to_string(), serde_json::Value::from(*title)))
        .collect();
    let header_options = gotemplate::Options {
        missing_key_error: false,
        header: true,
    };
    let header = template
        .execute_with(&serde_json::Value::Object(titles), header_options)
        .map_err(template_error)?;
    let lines = format!("{header}\n{text}");
    let cells: Vec<Vec<String>> = lines
        .strip_suffix('\n')
        .unwrap_or(&lines)
        .split('\n')
        .map(|line| line.split('\t').map(String::from).collect())
        .collect();
    Ok(table(&cells))
}

#[cfg(test)]
mod more_tests {
    use super::*;

    #[test]
    fn nanosecond_times_trim_like_go() {
        let t = UNIX_EPOCH + std::time::Duration::new(1_704_067_200, 120_000_000);
        assert_eq!(rfc3339_nano_utc(t), "2024-01-01T00:00:00.12Z");
        let t = UNIX_EPOCH + std::time::Duration::new(1_704_067_200, 0);
        assert_eq!(rfc3339_nano_utc(t), "2024-01-01T00:00:00Z");
    }

    #[test]
    fn civil_times_round_trip() {
        assert_eq!(rfc3339_utc(1_704_067_200), "2024-01-01T00:00:00Z");
        assert_eq!(go_time_utc(0), "1970-01-01 00:00:00 +0000 UTC");
        for t in [0, 951_782_400, 1_709_164_800, 4_102_444_799] {
            assert_eq!(parse_rfc3339(&rfc3339_utc(t)), Some(t));
        }
    }

    fn rows() -> Vec<serde_json::Value> {
        vec![
            serde_json::json!({"ID": "4c2b7a0e9f1d", "Names": "web", "Image": "nginx", "Status": "Up 2 minutes", "Ports": "0.0.0.0:8080->80/tcp"}),
            serde_json::json!({"ID": "9e8d7c6b5a41", "Names": "db-primary", "Image": "postgres:16", "Status": "Exited (0) 1 hour ago", "Ports": ""}),
        ]
    }

    #[test]
    fn table_formats_have_titled_aligned_columns() {
        let out = render_rows(
            "table {{.ID}}\\t{{.Names}}\\t{{.Status}}",
            &PS_COLUMNS,
            &rows(),
        )
        .unwrap();
        assert_eq!(
            out,
            "CONTAINER ID   NAMES        STATUS\n\
             4c2b7a0e9f1d   web          Up 2 minutes\n\
             9e8d7c6b5a41   db-primary   Exited (0) 1 hour ago\n"
        );
        // Header functions leave titles alone; cells without tabs are not aligned.
        let out = render_rows("table {{lower .Names}}: {{.Image}}", &PS_COLUMNS, &rows()).unwrap();
        assert_eq!(out, "NAMES: IMAGE\nweb: nginx\ndb-primary: postgres:16\n");
        // `table` alone is the default table; no rows still print the header.
        let out = render_rows("table", &PS_COLUMNS, &[]).unwrap();
        assert_eq!(
            out,
            "CONTAINER ID   IMAGE     COMMAND   CREATED   STATUS    PORTS     NAMES\n"
        );
    }

    #[test]
    fn plain_and_json_formats_print_a_line_per_row() {
        let out = render_rows("{{.Names}}={{.Image}}", &PS_COLUMNS, &rows()).unwrap();
        assert_eq!(out, "web=nginx\ndb-primary=postgres:16\n");
        let out = render_rows(" {{.ID}}\\t{{.Names}} ", &PS_COLUMNS, &rows()[..1]).unwrap();
        assert_eq!(out, "4c2b7a0e9f1d\tweb\n");
        let out = render_rows("json", &PS_COLUMNS, &rows()[..1]).unwrap();
        assert_eq!(out, format!("{}\n", rows()[0]));
        assert_eq!(render_rows("{{.Names}}", &PS_COLUMNS, &[]).unwrap(), "");
    }

    #[test]
    fn bad_list_templates_say_what_is_wrong() {
        let err = render_rows("{{.Nmes}}", &PS_COLUMNS, &rows()).unwrap_err();
        assert_eq!(
            format!("{err:#}"),
            r#"template parsing error: template: :1:2: executing "" at <.Nmes>: map has no entry for key "Nmes""#
        );
        let err = render_rows("table {{foo .ID}}", &PS_COLUMNS, &rows()).unwrap_err();
        assert_eq!(
            format!("{err:#}"),
            r#"template parsing error: template: :1: function "foo" not defined"#
        );
    }
}
