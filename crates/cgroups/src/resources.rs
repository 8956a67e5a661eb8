//! Pure validation and value conversion of OCI `linux.resources`.
//!
//! [`validate`] turns the spec into a [`Plan`] of checked values without touching
//! the filesystem; the v1 and v2 writers turn a plan into file writes. Every error
//! names the OCI field, the value and why it was refused.

use oci_spec::runtime::{LinuxDeviceType, LinuxResources};

use crate::{CgroupError, Result};

/// Kernel bounds (kernel/sched/core.c, mm/memcontrol.c, block/blk-cgroup.c).
pub const MIN_SHARES: u64 = 2;
pub const MAX_SHARES: u64 = 262_144;
pub const MIN_CFS_US: u64 = 1_000;
pub const MAX_CFS_PERIOD_US: u64 = 1_000_000;
pub const MIN_BLKIO_WEIGHT: u16 = 10;
pub const MAX_BLKIO_WEIGHT: u16 = 1_000;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    pub memory: Option<MemoryPlan>,
    pub cpu: Option<CpuPlan>,
    /// `pids.max` value: a number or `max`.
    pub pids_max: Option<String>,
    pub blkio: Option<BlkioPlan>,
    /// `None`: leave the device controller alone. `Some`: deny all, then these.
    pub devices: Option<Vec<DeviceRule>>,
    pub hugepages: Vec<HugepageLimit>,
    /// cgroup v2 `unified` file name -> value, sorted by name.
    pub unified: Vec<(String, String)>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemoryPlan {
    /// Bytes; -1 = unlimited.
    pub limit: Option<i64>,
    /// OCI swap = memory + swap in bytes; -1 = unlimited.
    pub swap: Option<i64>,
    pub reservation: Option<i64>,
    pub swappiness: Option<u64>,
    pub disable_oom_killer: Option<bool>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CpuPlan {
    pub shares: Option<u64>,
    /// µs; -1 = unlimited.
    pub quota: Option<i64>,
    pub period: Option<u64>,
    pub burst: Option<u64>,
    pub idle: Option<i64>,
    pub rt_runtime: Option<i64>,
    pub rt_period: Option<u64>,
    pub cpus: Option<String>,
    pub mems: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Throttle {
    ReadBps,
    WriteBps,
    ReadIops,
    WriteIops,
}

impl Throttle {
    pub fn v1_file(self) -> &'static str {
        match self {
            Throttle::ReadBps => "blkio.throttle.read_bps_device",
            Throttle::WriteBps => "blkio.throttle.write_bps_device",
            Throttle::ReadIops => "blkio.throttle.read_iops_device",
            Throttle::WriteIops => "blkio.throttle.write_iops_device",
        }
    }
    pub fn v2_key(self) -> &'static str {
        match self {
            Throttle::ReadBps => "rbps",
            Throttle::WriteBps => "wbps",
            Throttle::ReadIops => "riops",
            Throttle::WriteIops => "wiops",
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BlkioPlan {
    /// v1 scale, 10..=1000.
    pub weight: Option<u16>,
    /// (major, minor, weight on the v1 scale).
    pub weight_devices: Vec<(i64, i64, u16)>,
    pub throttles: Vec<(Throttle, i64, i64, u64)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceRule {
    pub allow: bool,
    /// `c 1:3 rwm`, `a *:* rwm`.
    pub line: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HugepageLimit {
    /// As the kernel names it in file names: `2MB`, `1GB`, `64KB`.
    pub page_size: String,
    /// Bytes; -1 = unlimited.
    pub limit: i64,
}

fn invalid(field: &str, value: impl std::fmt::Display, reason: &str) -> CgroupError {
    CgroupError::Invalid {
        field: field.to_string(),
        reason: format!("{value}: {reason}"),
    }
}

/// 0 means "not set" (runc compatible); otherwise -1 or a positive byte count.
fn memory_value(field: &str, v: Option<i64>) -> Result<Option<i64>> {
    match v {
        None | Some(0) => Ok(None),
        Some(v) if v == -1 || v > 0 => Ok(Some(v)),
        Some(v) => Err(invalid(
            field,
            v,
            "must be -1 (unlimited) or a positive number of bytes",
        )),
    }
}

/// Check every value of `resources`; nothing is written.
pub fn validate(resources: &LinuxResources) -> Result<Plan> {
    let mut plan = Plan::default();

    if let Some(mem) = resources.memory() {
        let limit = memory_value("linux.resources.memory.limit", mem.limit())?;
        let swap = memory_value("linux.resources.memory.swap", mem.swap())?;
        let reservation = memory_value("linux.resources.memory.reservation", mem.reservation())?;
        if let Some(swap) = swap.filter(|s| *s > 0) {
            match limit {
                Some(l) if l > 0 && swap < l => {
                    return Err(invalid(
                        "linux.resources.memory.swap",
                        swap,
                        &format!("memory+swap must be >= the memory limit {l}"),
                    ))
                }
                Some(l) if l > 0 => {}
                _ => {
                    return Err(invalid(
                        "linux.resources.memory.swap",
                        swap,
                        "a swap limit needs a positive memory limit (swap counts memory+swap)",
                    ))
                }
            }
        }
        if let Some(s) = mem.swappiness().filter(|s| *s > 100) {
            return Err(invalid(
                "linux.resources.memory.swappiness",
                s,
                "must be 0..=100",
            ));
        }
        #[allow(deprecated)]
        if mem.kernel().is_some() || mem.kernel_tcp().is_some() {
            tracing::debug!("linux.resources.memory.kernel/kernelTCP are deprecated and ignored");
        }
        plan.memory = Some(MemoryPlan {
            limit,
            swap,
            reservation,
            swappiness: mem.swappiness(),
            disable_oom_killer: mem.disable_oom_killer(),
        });
    }

    if let Some(cpu) = resources.cpu() {
        let shares = match cpu.shares() {
            None | Some(0) => None,
            Some(s) if (MIN_SHARES..=MAX_SHARES).contains(&s) => Some(s),
            Some(s) => {
                return Err(invalid(
                    "linux.resources.cpu.shares",
                    s,
                    &format!("must be {MIN_SHARES}..={MAX_SHARES}"),
                ))
            }
        };
        let quota = match cpu.quota() {
            None | Some(0) => None,
            Some(-1) => Some(-1),
            Some(q) if q >= MIN_CFS_US as i64 => Some(q),
            Some(q) => {
                return Err(invalid(
                    "linux.resources.cpu.quota",
                    q,
                    &format!("must be -1 (unlimited) or at least {MIN_CFS_US} µs"),
                ))
            }
        };
        let period = match cpu.period() {
            None | Some(0) => None,
            Some(p) if (MIN_CFS_US..=MAX_CFS_PERIOD_US).contains(&p) => Some(p),
            Some(p) => {
                return Err(invalid(
                    "linux.resources.cpu.period",
                    p,
                    &format!("must be {MIN_CFS_US}..={MAX_CFS_PERIOD_US} µs"),
                ))
            }
        };
        if let Some(i) = cpu.idle().filter(|i| *i != 0 && *i != 1) {
            return Err(invalid("linux.resources.cpu.idle", i, "must be 0 or 1"));
        }
        if let Some(r) = cpu.realtime_runtime().filter(|r| *r < -1) {
            return Err(invalid(
                "linux.resources.cpu.realtimeRuntime",
                r,
                "must be -1 or >= 0 µs",
            ));
        }
        if let (Some(b), Some(q)) = (cpu.burst(), quota.filter(|q| *q > 0)) {
            if b > q as u64 {
                return Err(invalid(
                    "linux.resources.cpu.burst",
                    b,
                    &format!("must not exceed the quota {q}"),
                ));
            }
        }
        let cpus = list_value("linux.resources.cpu.cpus", cpu.cpus())?;
        let mems = list_value("linux.resources.cpu.mems", cpu.mems())?;
        plan.cpu = Some(CpuPlan {
            shares,
            quota,
            period,
            burst: cpu.burst(),
            idle: cpu.idle(),
            rt_runtime: cpu.realtime_runtime(),
            rt_period: cpu.realtime_period().filter(|p| *p != 0),
            cpus,
            mems,
        });
    }

    if let Some(pids) = resources.pids() {
        let limit = pids.limit();
        plan.pids_max = Some(if limit > 0 {
            limit.to_string()
        } else {
            "max".to_string()
        });
    }

    if let Some(bio) = resources.block_io() {
        let weight_ok = |field: &str, w: u16| {
            if (MIN_BLKIO_WEIGHT..=MAX_BLKIO_WEIGHT).contains(&w) {
                Ok(w)
            } else {
                Err(invalid(
                    field,
                    w,
                    &format!("must be {MIN_BLKIO_WEIGHT}..={MAX_BLKIO_WEIGHT}"),
                ))
            }
        };
        let weight = bio
            .weight()
            .map(|w| weight_ok("linux.resources.blockIO.weight", w))
            .transpose()?;
        if bio.leaf_weight().is_some() {
            tracing::debug!(
                "linux.resources.blockIO.leafWeight is not supported by current kernels; ignored"
            );
        }
        let mut weight_devices = Vec::new();
        for d in bio.weight_device().iter().flatten() {
            let field = "linux.resources.blockIO.weightDevice";
            device_numbers(field, d.major(), d.minor())?;
            if let Some(w) = d.weight() {
                weight_devices.push((d.major(), d.minor(), weight_ok(field, w)?));
            }
        }
        let mut throttles = Vec::new();
        let lists = [
            (
                Throttle::ReadBps,
                "throttleReadBpsDevice",
                bio.throttle_read_bps_device(),
            ),
            (
                Throttle::WriteBps,
                "throttleWriteBpsDevice",
                bio.throttle_write_bps_device(),
            ),
            (
                Throttle::ReadIops,
                "throttleReadIOPSDevice",
                bio.throttle_read_iops_device(),
            ),
            (
                Throttle::WriteIops,
                "throttleWriteIOPSDevice",
                bio.throttle_write_iops_device(),
            ),
        ];
        for (kind, name, list) in lists {
            for d in list.iter().flatten() {
                device_numbers(
                    &format!("linux.resources.blockIO.{name}"),
                    d.major(),
                    d.minor(),
                )?;
                throttles.push((kind, d.major(), d.minor(), d.rate()));
            }
        }
        plan.blkio = Some(BlkioPlan {
            weight,
            weight_devices,
            throttles,
        });
    }

    if let Some(devices) = resources.devices() {
        let mut rules = Vec::with_capacity(devices.len());
        for (i, d) in devices.iter().enumerate() {
            let field = format!("linux.resources.devices[{i}]");
            let typ = match d.typ().unwrap_or(LinuxDeviceType::A) {
                LinuxDeviceType::A => 'a',
                LinuxDeviceType::B => 'b',
                // "u" (unbuffered character) is a character device to the kernel.
                LinuxDeviceType::C | LinuxDeviceType::U => 'c',
                LinuxDeviceType::P => {
                    // The devices controller only knows block and character devices.
                    tracing::debug!(%field, "FIFO device rule ignored: the devices cgroup does not filter FIFOs");
                    continue;
                }
            };
            let major = device_number(&format!("{field}.major"), d.major())?;
            let minor = device_number(&format!("{field}.minor"), d.minor())?;
            let access = access_value(&format!("{field}.access"), d.access().as_deref())?;
            rules.push(DeviceRule {
                allow: d.allow(),
                line: format!("{typ} {major}:{minor} {access}"),
            });
        }
        plan.devices = Some(rules);
    }

    for (i, h) in resources.hugepage_limits().iter().flatten().enumerate() {
        let field = format!("linux.resources.hugepageLimits[{i}]");
        let size = h.page_size();
        if !valid_page_size(size) {
            return Err(invalid(
                &format!("{field}.pageSize"),
                size,
                "must look like 2MB, 1GB or 64KB",
            ));
        }
        if h.limit() < -1 {
            return Err(invalid(
                &format!("{field}.limit"),
                h.limit(),
                "must be -1 (unlimited) or >= 0 bytes",
            ));
        }
        plan.hugepages.push(HugepageLimit {
            page_size: size.clone(),
            limit: h.limit(),
        });
    }

    if let Some(unified) = resources.unified() {
        let mut entries: Vec<(String, String)> = unified
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        entries.sort();
        for (k, _) in &entries {
            if k.is_empty() || k.contains('/') || k.starts_with('.') || !k.contains('.') {
                return Err(invalid(
                    "linux.resources.unified",
                    format!("{k:?}"),
                    "keys must be cgroup file names like memory.high",
                ));
            }
        }
        plan.unified = entries;
    }

    if resources.network().is_some() || resources.rdma().is_some() {
        tracing::debug!("linux.resources.network/rdma are not managed by Coracle; ignored");
    }
    Ok(plan)
}

fn device_numbers(field: &str, major: i64, minor: i64) -> Result<()> {
    if major < 0 || minor < 0 {
        return Err(invalid(
            field,
            format!("{major}:{minor}"),
            "device numbers must be >= 0",
        ));
    }
    Ok(())
}

/// None or -1 is the wildcard `*`.
fn device_number(field: &str, n: Option<i64>) -> Result<String> {
    match n {
        None | Some(-1) => Ok("*".to_string()),
        Some(n) if n >= 0 => Ok(n.to_string()),
        Some(n) => Err(invalid(field, n, "must be -1 (any) or >= 0")),
    }
}

/// Missing or empty access means all of `rwm`.
fn access_value(field: &str, access: Option<&str>) -> Result<String> {
    let a = access.unwrap_or("");
    if a.is_empty() {
        return Ok("rwm".to_string());
    }
    let mut seen = String::new();
    for ch in a.chars() {
        if !"rwm".contains(ch) || seen.contains(ch) {
            return Err(invalid(
                field,
                format!("{a:?}"),
                "must be a combination of r, w and m",
            ));
        }
        seen.push(ch);
    }
    Ok(a.to_string())
}

/// `cpuset.cpus`/`cpuset.mems` syntax: comma-separated numbers and ranges (`0-2,4`).
/// An empty string leaves the value unset.
fn list_value(field: &str, v: &Option<String>) -> Result<Option<String>> {
    let Some(v) = v else { return Ok(None) };
    let v = v.trim();
    if v.is_empty() {
        return Ok(None);
    }
    if !is_cpu_list(v) {
        return Err(invalid(
            field,
            format!("{v:?}"),
            "must be a list of numbers and ranges like 0-2,4",
        ));
    }
    Ok(Some(v.to_string()))
}

pub fn is_cpu_list(s: &str) -> bool {
    let num = |p: &str| !p.is_empty() && p.len() <= 6 && p.bytes().all(|b| b.is_ascii_digit());
    s.split(',').all(|part| match part.split_once('-') {
        Some((a, b)) => num(a) && num(b) && a.parse::<u32>().ok() <= b.parse::<u32>().ok(),
        None => num(part),
    })
}

fn valid_page_size(s: &str) -> bool {
    let digits = s.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let unit = &s[digits.len()..];
    !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && matches!(unit, "KB" | "MB" | "GB")
}

/// runc's conversion of v1 `cpu.shares` (2..=262144) to v2 `cpu.weight` (1..=10000).
pub fn shares_to_weight(shares: u64) -> u64 {
    1 + ((shares.saturating_sub(2)) * 9999) / 262_142
}

/// v1 blkio weight (10..=1000) to v2 `io.weight` (1..=10000), linear.
pub fn blkio_weight_to_io_weight(weight: u16) -> u64 {
    1 + (u64::from(weight).saturating_sub(10) * 9999) / 990
}

/// v2 `memory.swap.max` from the OCI memory+swap value: swap alone, `max`, or
/// nothing to write. `validate` has already ensured swap >= limit > 0 for a
/// positive swap.
pub fn v2_swap_max(limit: Option<i64>, swap: Option<i64>) -> Option<String> {
    match (limit, swap) {
        (_, Some(-1)) => Some("max".into()),
        // Unlimited memory with swap unset: unlimited swap too, as on v1.
        (Some(-1), None) => Some("max".into()),
        (Some(l), Some(s)) if l > 0 && s >= l => Some((s - l).to_string()),
        _ => None,
    }
}

/// `-1` becomes `max` (v2 spelling of unlimited).
pub fn v2_bytes(v: i64) -> String {
    if v == -1 {
        "max".into()
    } else {
        v.to_string()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use oci_spec::runtime::{
        LinuxBlockIoBuilder, LinuxCpuBuilder, LinuxDeviceCgroupBuilder, LinuxHugepageLimitBuilder,
        LinuxMemoryBuilder, LinuxPidsBuilder, LinuxResourcesBuilder, LinuxThrottleDeviceBuilder,
    };

    use super::*;

    fn err_text(r: &LinuxResources) -> String {
        validate(r).unwrap_err().to_string()
    }

    #[test]
    fn weight_conversion_matches_runc() {
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(1024), 39);
        assert_eq!(shares_to_weight(262_144), 10_000);
        assert_eq!(blkio_weight_to_io_weight(10), 1);
        assert_eq!(blkio_weight_to_io_weight(500), 4950);
        assert_eq!(blkio_weight_to_io_weight(1000), 10_000);
    }

    #[test]
    fn swap_conversion() {
        assert_eq!(v2_swap_max(Some(100), Some(300)), Some("200".into()));
        assert_eq!(v2_swap_max(Some(100), Some(100)), Some("0".into()));
        assert_eq!(v2_swap_max(Some(100), Some(-1)), Some("max".into()));
        assert_eq!(v2_swap_max(Some(-1), None), Some("max".into()));
        assert_eq!(v2_swap_max(Some(100), None), None);
        assert_eq!(v2_swap_max(None, None), None);
    }

    #[test]
    fn cpu_lists() {
        for ok in ["0", "0-2", "0-2,4", "1,3,5-7", "0-0"] {
            assert!(is_cpu_list(ok), "{ok}");
        }
        for bad in ["", "a", "0-", "-1", "2-1", "0,,1", "0 1", "1-2-3", "0x1"] {
            assert!(!is_cpu_list(bad), "{bad}");
        }
    }

    #[test]
    fn page_sizes() {
        for ok in ["2MB", "1GB", "64KB"] {
            assert!(valid_page_size(ok), "{ok}");
        }
        for bad in ["", "MB", "2mb", "2M", "2 MB", "x2MB"] {
            assert!(!valid_page_size(bad), "{bad}");
        }
    }

    #[test]
    fn full_plan() {
        let r = LinuxResourcesBuilder::default()
            .memory(
                LinuxMemoryBuilder::default()
                    .limit(100i64)
                    .swap(300i64)
                    .reservation(50i64)
                    .build()
                    .unwrap(),
            )
            .cpu(
                LinuxCpuBuilder::default()
                    .shares(1024u64)
                    .quota(50_000i64)
                    .period(100_000u64)
                    .cpus("0-1")
                    .build()
                    .unwrap(),
            )
            .pids(LinuxPidsBuilder::default().limit(0i64).build().unwrap())
            .devices(vec![
                LinuxDeviceCgroupBuilder::default()
                    .allow(false)
                    .access("rwm")
                    .build()
                    .unwrap(),
                LinuxDeviceCgroupBuilder::default()
                    .allow(true)
                    .typ(LinuxDeviceType::C)
                    .major(1i64)
                    .minor(3i64)
                    .access("rwm")
                    .build()
                    .unwrap(),
                LinuxDeviceCgroupBuilder::default()
                    .allow(true)
                    .typ(LinuxDeviceType::C)
                    .major(136i64)
                    .minor(-1i64)
                    .access("rw")
                    .build()
                    .unwrap(),
            ])
            .build()
            .unwrap();
        let plan = validate(&r).unwrap();
        let mem = plan.memory.unwrap();
        assert_eq!(
            (mem.limit, mem.swap, mem.reservation),
            (Some(100), Some(300), Some(50))
        );
        let cpu = plan.cpu.unwrap();
        assert_eq!(
            (cpu.shares, cpu.quota, cpu.period),
            (Some(1024), Some(50_000), Some(100_000))
        );
        assert_eq!(cpu.cpus.as_deref(), Some("0-1"));
        assert_eq!(plan.pids_max.as_deref(), Some("max"));
        let lines: Vec<_> = plan
            .devices
            .unwrap()
            .into_iter()
            .map(|d| (d.allow, d.line))
            .collect();
        assert_eq!(
            lines,
            vec![
                (false, "a *:* rwm".into()),
                (true, "c 1:3 rwm".into()),
                (true, "c 136:* rw".into())
            ]
        );
    }

    #[test]
    fn errors_name_field_value_and_reason() {
        let mem = |l: i64| {
            LinuxResourcesBuilder::default()
                .memory(LinuxMemoryBuilder::default().limit(l).build().unwrap())
                .build()
                .unwrap()
        };
        let e = err_text(&mem(-5));
        assert!(
            e.contains("linux.resources.memory.limit")
                && e.contains("-5")
                && e.contains("positive"),
            "{e}"
        );
        assert!(validate(&mem(-1)).is_ok());

        let swap_no_limit = LinuxResourcesBuilder::default()
            .memory(LinuxMemoryBuilder::default().swap(100i64).build().unwrap())
            .build()
            .unwrap();
        assert!(err_text(&swap_no_limit).contains("memory.swap"));
        let swap_small = LinuxResourcesBuilder::default()
            .memory(
                LinuxMemoryBuilder::default()
                    .limit(200i64)
                    .swap(100i64)
                    .build()
                    .unwrap(),
            )
            .build()
            .unwrap();
        assert!(err_text(&swap_small).contains(">= the memory limit 200"));

        let cpu = |b: LinuxCpuBuilder| {
            LinuxResourcesBuilder::default()
                .cpu(b.build().unwrap())
                .build()
                .unwrap()
        };
        let e = err_text(&cpu(LinuxCpuBuilder::default().shares(1u64)));
        assert!(e.contains("cpu.shares") && e.contains("1:"), "{e}");
        assert!(
            err_text(&cpu(LinuxCpuBuilder::default().shares(300_000u64))).contains("2..=262144")
        );
        assert!(err_text(&cpu(LinuxCpuBuilder::default().quota(-7i64))).contains("cpu.quota"));
        assert!(err_text(&cpu(LinuxCpuBuilder::default().quota(500i64))).contains("1000"));
        assert!(err_text(&cpu(LinuxCpuBuilder::default().period(10u64))).contains("cpu.period"));
        let e = err_text(&cpu(LinuxCpuBuilder::default().cpus("0-2;4")));
        assert!(
            e.contains("cpu.cpus") && e.contains("\"0-2;4\"") && e.contains("0-2,4"),
            "{e}"
        );
        assert!(err_text(&cpu(LinuxCpuBuilder::default().mems("zero"))).contains("cpu.mems"));
        assert!(err_text(&cpu(LinuxCpuBuilder::default().idle(3i64))).contains("cpu.idle"));

        let dev = |d: LinuxDeviceCgroupBuilder| {
            LinuxResourcesBuilder::default()
                .devices(vec![d.build().unwrap()])
                .build()
                .unwrap()
        };
        let e = err_text(&dev(LinuxDeviceCgroupBuilder::default().access("rwx")));
        assert!(e.contains("devices[0].access") && e.contains("rwx"), "{e}");
        assert!(
            err_text(&dev(LinuxDeviceCgroupBuilder::default().major(-2i64)))
                .contains("devices[0].major")
        );

        let bio = LinuxResourcesBuilder::default()
            .block_io(LinuxBlockIoBuilder::default().weight(5u16).build().unwrap())
            .build()
            .unwrap();
        assert!(err_text(&bio).contains("blockIO.weight"));
        let bio = LinuxResourcesBuilder::default()
            .block_io(
                LinuxBlockIoBuilder::default()
                    .throttle_read_bps_device(vec![LinuxThrottleDeviceBuilder::default()
                        .major(-1i64)
                        .minor(0i64)
                        .rate(1u64)
                        .build()
                        .unwrap()])
                    .build()
                    .unwrap(),
            )
            .build()
            .unwrap();
        assert!(err_text(&bio).contains("throttleReadBpsDevice"));

        let huge = LinuxResourcesBuilder::default()
            .hugepage_limits(vec![LinuxHugepageLimitBuilder::default()
                .page_size("2M")
                .limit(1i64)
                .build()
                .unwrap()])
            .build()
            .unwrap();
        assert!(err_text(&huge).contains("hugepageLimits[0].pageSize"));

        let uni = LinuxResourcesBuilder::default()
            .unified(HashMap::from([("../x".to_string(), "1".to_string())]))
            .build()
            .unwrap();
        assert!(err_text(&uni).contains("unified"));
    }

    #[test]
    fn zero_means_unset() {
        let r = LinuxResourcesBuilder::default()
            .memory(LinuxMemoryBuilder::default().limit(0i64).build().unwrap())
            .cpu(
                LinuxCpuBuilder::default()
                    .shares(0u64)
                    .quota(0i64)
                    .period(0u64)
                    .cpus("")
                    .build()
                    .unwrap(),
            )
            .build()
            .unwrap();
        let plan = validate(&r).unwrap();
        assert_eq!(plan.memory.unwrap(), MemoryPlan::default());
        assert_eq!(plan.cpu.unwrap(), CpuPlan::default());
    }
}
