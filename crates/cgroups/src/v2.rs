//! Pure cgroup v2 writers (also used for the cgroup2 mount of a hybrid host).

use std::path::Path;
use std::sync::Once;
use std::time::{Duration, Instant};

use crate::fsutil::{self, Write};
use crate::resources::{self, HugepageLimit, Plan};
use crate::{CgroupError, Result};

/// Controllers `create` enables along the path, in this order, where offered.
pub const MANAGED_CONTROLLERS: &[&str] = &["cpuset", "cpu", "io", "memory", "hugetlb", "pids"];

/// How long freeze/thaw waits for `cgroup.events` to report the new state.
pub const FREEZE_TIMEOUT: Duration = Duration::from_secs(5);

static DEVICES_WARNING: Once = Once::new();

fn words(text: &str) -> Vec<&str> {
    text.split_whitespace().collect()
}

/// Enable `wanted` controllers in `cgroup.subtree_control` of every ancestor of
/// `root/rel` (root included, the leaf itself excluded), top-down, skipping those
/// already enabled. A controller the ancestor's `cgroup.controllers` does not offer
/// is skipped, or with `strict` an error.
pub fn enable_controllers(root: &Path, rel: &Path, wanted: &[&str], strict: bool) -> Result<()> {
    let chain = fsutil::path_chain(root, rel);
    for dir in &chain[..chain.len() - 1] {
        let available_text = fsutil::read_file(&dir.join("cgroup.controllers"))?;
        let available = words(&available_text);
        let current_text = fsutil::read_file(&dir.join("cgroup.subtree_control"))?;
        let current = words(&current_text);
        let mut missing = Vec::new();
        for c in wanted {
            if !available.contains(c) {
                if strict {
                    return Err(CgroupError::Unsupported {
                        field: format!("{c} controller"),
                        reason: format!(
                            "not offered in {}",
                            dir.join("cgroup.controllers").display()
                        ),
                    });
                }
                continue;
            }
            if !current.contains(c) {
                missing.push(format!("+{c}"));
            }
        }
        if !missing.is_empty() {
            fsutil::write_file(&dir.join("cgroup.subtree_control"), &missing.join(" "))?;
        }
    }
    Ok(())
}

pub fn create(root: &Path, rel: &Path) -> Result<()> {
    let leaf = root.join(rel);
    fsutil::create_dir_all(&leaf)?;
    enable_controllers(root, rel, MANAGED_CONTROLLERS, false)
}

/// Controllers the plan writes to.
fn wanted_controllers(plan: &Plan) -> Vec<&'static str> {
    let mut out = Vec::new();
    if let Some(cpu) = &plan.cpu {
        if cpu.cpus.is_some() || cpu.mems.is_some() {
            out.push("cpuset");
        }
        if cpu.shares.is_some()
            || cpu.quota.is_some()
            || cpu.period.is_some()
            || cpu.burst.is_some()
        {
            out.push("cpu");
        }
    }
    if plan.blkio.as_ref().is_some_and(|b| {
        b.weight.is_some() || !b.weight_devices.is_empty() || !b.throttles.is_empty()
    }) {
        out.push("io");
    }
    if plan
        .memory
        .as_ref()
        .is_some_and(|m| m.limit.is_some() || m.swap.is_some() || m.reservation.is_some())
    {
        out.push("memory");
    }
    if !plan.hugepages.is_empty() {
        out.push("hugetlb");
    }
    if plan.pids_max.is_some() {
        out.push("pids");
    }
    for (key, _) in &plan.unified {
        let prefix = key.split('.').next().unwrap_or("");
        if let Some(c) = MANAGED_CONTROLLERS
            .iter()
            .chain(["misc", "rdma"].iter())
            .find(|c| **c == prefix)
        {
            if !out.contains(c) {
                out.push(c);
            }
        }
    }
    out
}

/// Layout checks, then make sure the controllers the plan needs are enabled.
pub fn prepare(root: &Path, rel: &Path, plan: &Plan) -> Result<()> {
    if let Some(cpu) = &plan.cpu {
        if cpu.rt_runtime.is_some() || cpu.rt_period.is_some() {
            return Err(CgroupError::Unsupported {
                field: "linux.resources.cpu.realtimeRuntime/realtimePeriod".into(),
                reason: "cgroup v2 has no realtime CPU bandwidth controls".into(),
            });
        }
    }
    enable_controllers(root, rel, &wanted_controllers(plan), true)
}

pub fn hugetlb_writes(dir: &Path, limits: &[HugepageLimit]) -> Vec<Write> {
    limits
        .iter()
        .map(|h| {
            Write::new(
                dir,
                &format!("hugetlb.{}.max", h.page_size),
                resources::v2_bytes(h.limit),
            )
        })
        .collect()
}

/// Every file write `apply` will do, in order; writes nothing.
pub fn plan_writes(root: &Path, rel: &Path, plan: &Plan) -> Result<Vec<Write>> {
    let dir = root.join(rel);
    let mut w = Vec::new();

    if let Some(mem) = &plan.memory {
        if let Some(l) = mem.limit {
            w.push(Write::new(&dir, "memory.max", resources::v2_bytes(l)));
        }
        if let Some(swap) = resources::v2_swap_max(mem.limit, mem.swap) {
            let file = dir.join("memory.swap.max");
            if !file.exists() {
                if mem.swap.is_some() {
                    return Err(CgroupError::Unsupported {
                        field: "linux.resources.memory.swap".into(),
                        reason: format!(
                            "{} does not exist: swap accounting is off",
                            file.display()
                        ),
                    });
                }
            } else {
                w.push(Write::new(&dir, "memory.swap.max", swap));
            }
        }
        if let Some(r) = mem.reservation {
            w.push(Write::new(&dir, "memory.low", resources::v2_bytes(r)));
        }
        if mem.swappiness.is_some() || mem.disable_oom_killer.is_some() {
            tracing::warn!("linux.resources.memory.swappiness/disableOOMKiller have no cgroup v2 equivalent; ignored");
        }
    }

    if let Some(cpu) = &plan.cpu {
        if let Some(s) = cpu.shares {
            w.push(Write::new(
                &dir,
                "cpu.weight",
                resources::shares_to_weight(s).to_string(),
            ));
        }
        let quota = cpu.quota.map(|q| {
            if q < 0 {
                "max".to_string()
            } else {
                q.to_string()
            }
        });
        match (quota, cpu.period) {
            (Some(q), Some(p)) => w.push(Write::new(&dir, "cpu.max", format!("{q} {p}"))),
            // The kernel keeps the current period when only the quota is written.
            (Some(q), None) => w.push(Write::new(&dir, "cpu.max", q)),
            (None, Some(p)) => {
                let current = fsutil::read_file(&dir.join("cpu.max"))?;
                let q = current
                    .split_whitespace()
                    .next()
                    .unwrap_or("max")
                    .to_string();
                w.push(Write::new(&dir, "cpu.max", format!("{q} {p}")));
            }
            (None, None) => {}
        }
        if let Some(b) = cpu.burst {
            w.push(Write::new(&dir, "cpu.max.burst", b.to_string()));
        }
        if let Some(i) = cpu.idle {
            w.push(Write::new(&dir, "cpu.idle", i.to_string()));
        }
        if let Some(c) = &cpu.cpus {
            w.push(Write::new(&dir, "cpuset.cpus", c.clone()));
        }
        if let Some(m) = &cpu.mems {
            w.push(Write::new(&dir, "cpuset.mems", m.clone()));
        }
    }

    if let Some(max) = &plan.pids_max {
        w.push(Write::new(&dir, "pids.max", max.clone()));
    }

    if let Some(bio) = &plan.blkio {
        // BFQ takes the v1 scale (1..=1000) as is; io.weight is 1..=10000.
        let bfq = dir.join("io.bfq.weight").exists();
        if let Some(weight) = bio.weight {
            if bfq {
                w.push(Write::new(&dir, "io.bfq.weight", weight.to_string()));
            } else {
                w.push(Write::new(
                    &dir,
                    "io.weight",
                    resources::blkio_weight_to_io_weight(weight).to_string(),
                ));
            }
        }
        for (major, minor, weight) in &bio.weight_devices {
            if bfq {
                w.push(Write::new(
                    &dir,
                    "io.bfq.weight",
                    format!("{major}:{minor} {weight}"),
                ));
            } else {
                let v = resources::blkio_weight_to_io_weight(*weight);
                w.push(Write::new(
                    &dir,
                    "io.weight",
                    format!("{major}:{minor} {v}"),
                ));
            }
        }
        for (kind, major, minor, rate) in &bio.throttles {
            let rate = if *rate == 0 {
                "max".to_string()
            } else {
                rate.to_string()
            };
            w.push(Write::new(
                &dir,
                "io.max",
                format!("{major}:{minor} {}={rate}", kind.v2_key()),
            ));
        }
    }

    if plan.devices.as_ref().is_some_and(|d| !d.is_empty()) {
        DEVICES_WARNING.call_once(|| {
            tracing::warn!(
                "device rules (linux.resources.devices) are NOT enforced on cgroup v2 by Coracle: \
                 that needs an eBPF device program, which Coracle does not implement"
            );
        });
    }

    w.extend(hugetlb_writes(&dir, &plan.hugepages));

    for (key, value) in &plan.unified {
        w.push(Write::new(&dir, key, value.clone()));
    }
    Ok(w)
}

fn frozen_in_events(dir: &Path) -> Result<bool> {
    let events = fsutil::read_file(&dir.join("cgroup.events"))?;
    Ok(events.lines().any(|l| words(l) == ["frozen", "1"]))
}

/// Write `cgroup.freeze` and wait until `cgroup.events` reports the new state; a
/// freeze that does not settle is undone.
pub fn set_frozen(dir: &Path, frozen: bool) -> Result<()> {
    let freeze_file = dir.join("cgroup.freeze");
    fsutil::write_file(&freeze_file, if frozen { "1" } else { "0" })?;
    let start = Instant::now();
    let mut round = 0u32;
    while start.elapsed() < FREEZE_TIMEOUT {
        if frozen_in_events(dir)? == frozen {
            return Ok(());
        }
        round += 1;
        std::thread::sleep(Duration::from_millis(if round < 10 { 1 } else { 10 }));
    }
    if frozen {
        if let Err(e) = fsutil::write_file(&freeze_file, "0") {
            tracing::warn!(error = %e, "could not thaw after a failed freeze");
        }
    }
    Err(CgroupError::Timeout {
        op: if frozen { "freeze" } else { "thaw" },
        path: dir.join("cgroup.events"),
        state: format!("frozen {}", if frozen { 0 } else { 1 }),
        waited_ms: start.elapsed().as_millis() as u64,
    })
}

pub fn is_frozen(dir: &Path) -> Result<bool> {
    frozen_in_events(dir)
}
