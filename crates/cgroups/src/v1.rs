//! cgroup v1 (and hybrid) writers. Each controller lives in the hierarchy that
//! lists it; co-mounted controllers (`cpu,cpuacct`) share a directory.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::fsutil::{self, Write};
use crate::resources::{HugepageLimit, Plan};
use crate::{v2, CgroupError, Hierarchy, Result};

/// How long freeze/thaw waits for `freezer.state` to settle.
pub const FREEZE_TIMEOUT: Duration = Duration::from_secs(5);

const MEMSW: &str = "memory.memsw.limit_in_bytes";

fn controller_dir(hierarchies: &[Hierarchy], controller: &str, rel: &Path) -> Option<PathBuf> {
    hierarchies
        .iter()
        .find(|h| !h.unified && h.has_controller(controller))
        .map(|h| h.mount_point.join(rel))
}

fn need(hierarchies: &[Hierarchy], controller: &str, rel: &Path, field: &str) -> Result<PathBuf> {
    controller_dir(hierarchies, controller, rel).ok_or_else(|| CgroupError::Unsupported {
        field: field.to_string(),
        reason: format!("no cgroup v1 hierarchy has the {controller} controller mounted"),
    })
}

/// Create the directory in every hierarchy. A new cpuset directory starts with
/// empty `cpuset.cpus`/`cpuset.mems` and the kernel refuses tasks until they are
/// set, so each level on the path inherits its parent's values when empty. On
/// failure the directories this call created are removed again.
pub fn create(hierarchies: &[Hierarchy], rel: &Path) -> Result<()> {
    let mut created: Vec<&Hierarchy> = Vec::new();
    for h in hierarchies {
        let leaf = h.mount_point.join(rel);
        let existed = leaf.exists();
        let result = fsutil::create_dir_all(&leaf).and_then(|()| {
            if !h.unified && h.has_controller("cpuset") {
                inherit_cpuset(&h.mount_point, rel)
            } else {
                Ok(())
            }
        });
        if !existed {
            created.push(h);
        }
        if let Err(first) = result {
            let mut errors = vec![first];
            for h in created {
                if let Err(e) = fsutil::remove_cgroup(
                    &h.mount_point,
                    rel,
                    Instant::now() + fsutil::REMOVE_TIMEOUT,
                ) {
                    errors.push(e);
                }
            }
            return Err(if errors.len() == 1 {
                errors.remove(0)
            } else {
                CgroupError::Multiple(errors)
            });
        }
    }
    Ok(())
}

fn inherit_cpuset(root: &Path, rel: &Path) -> Result<()> {
    let chain = fsutil::path_chain(root, rel);
    for pair in chain.windows(2) {
        let (parent, child) = (&pair[0], &pair[1]);
        for file in ["cpuset.cpus", "cpuset.mems"] {
            let current = fsutil::read_file(&child.join(file))?;
            if current.trim().is_empty() {
                let value = fsutil::read_file(&parent.join(file))?;
                fsutil::write_file(&child.join(file), value.trim())?;
            }
        }
    }
    Ok(())
}

/// Checks that need the layout but write nothing, then the one preparatory write a
/// hybrid host may need: enabling `hugetlb` along the path in the cgroup2 mount.
pub fn prepare(hierarchies: &[Hierarchy], rel: &Path, plan: &Plan) -> Result<()> {
    if !plan.unified.is_empty() {
        return Err(CgroupError::Unsupported {
            field: "linux.resources.unified".into(),
            reason: "unified (cgroup v2) resources need a pure cgroup v2 host".into(),
        });
    }
    if !plan.hugepages.is_empty() && controller_dir(hierarchies, "hugetlb", rel).is_none() {
        match hierarchies.iter().find(|h| h.unified) {
            Some(u) => v2::enable_controllers(&u.mount_point, rel, &["hugetlb"], true)?,
            None => {
                return Err(CgroupError::Unsupported {
                    field: "linux.resources.hugepageLimits".into(),
                    reason: "no hugetlb controller mounted (v1 or cgroup2)".into(),
                })
            }
        }
    }
    Ok(())
}

/// Every file write `apply` will do, in order. Reads current values where the
/// order depends on them; writes nothing.
pub fn plan_writes(hierarchies: &[Hierarchy], rel: &Path, plan: &Plan) -> Result<Vec<Write>> {
    let mut w = Vec::new();

    if let Some(mem) = &plan.memory {
        let dir = need(hierarchies, "memory", rel, "linux.resources.memory")?;
        let memsw = dir.join(MEMSW);
        let memsw_exists = memsw.exists();
        if mem.swap.is_some() && !memsw_exists {
            return Err(CgroupError::Unsupported {
                field: "linux.resources.memory.swap".into(),
                reason: format!(
                    "{} does not exist: swap accounting is off (boot with swapaccount=1, or drop the swap limit)",
                    memsw.display()
                ),
            });
        }
        // An unlimited memory limit with swap unset lifts the swap limit too, or
        // the kernel refuses a memory limit above memory+swap.
        let swap = match (mem.limit, mem.swap) {
            (Some(-1), None) if memsw_exists => Some(-1),
            (_, s) => s,
        };
        match (mem.limit, swap) {
            (Some(limit), Some(swap)) => {
                // memory.limit <= memsw.limit must hold after each write.
                let current = fsutil::read_file(&memsw)?
                    .trim()
                    .parse::<i64>()
                    .unwrap_or(i64::MAX);
                let current = if current < 0 { i64::MAX } else { current };
                let new_swap = if swap < 0 { i64::MAX } else { swap };
                if new_swap > current {
                    w.push(Write::new(&dir, MEMSW, swap.to_string()));
                    w.push(Write::new(&dir, "memory.limit_in_bytes", limit.to_string()));
                } else {
                    w.push(Write::new(&dir, "memory.limit_in_bytes", limit.to_string()));
                    w.push(Write::new(&dir, MEMSW, swap.to_string()));
                }
            }
            (Some(limit), None) => {
                w.push(Write::new(&dir, "memory.limit_in_bytes", limit.to_string()))
            }
            (None, Some(swap)) => w.push(Write::new(&dir, MEMSW, swap.to_string())),
            (None, None) => {}
        }
        if let Some(r) = mem.reservation {
            w.push(Write::new(
                &dir,
                "memory.soft_limit_in_bytes",
                r.to_string(),
            ));
        }
        if let Some(s) = mem.swappiness {
            w.push(Write::new(&dir, "memory.swappiness", s.to_string()));
        }
        if let Some(d) = mem.disable_oom_killer {
            w.push(Write::new(
                &dir,
                "memory.oom_control",
                if d { "1" } else { "0" },
            ));
        }
    }

    if let Some(cpu) = &plan.cpu {
        let uses_cpu = cpu.shares.is_some()
            || cpu.quota.is_some()
            || cpu.period.is_some()
            || cpu.burst.is_some()
            || cpu.idle.is_some()
            || cpu.rt_runtime.is_some()
            || cpu.rt_period.is_some();
        if uses_cpu {
            let dir = need(hierarchies, "cpu", rel, "linux.resources.cpu")?;
            if let Some(s) = cpu.shares {
                w.push(Write::new(&dir, "cpu.shares", s.to_string()));
            }
            if let Some(p) = cpu.period {
                w.push(Write::new(&dir, "cpu.cfs_period_us", p.to_string()));
            }
            if let Some(q) = cpu.quota {
                w.push(Write::new(&dir, "cpu.cfs_quota_us", q.to_string()));
            }
            if let Some(b) = cpu.burst {
                w.push(Write::new(&dir, "cpu.cfs_burst_us", b.to_string()));
            }
            if let Some(i) = cpu.idle {
                w.push(Write::new(&dir, "cpu.idle", i.to_string()));
            }
            if let Some(p) = cpu.rt_period {
                w.push(Write::new(&dir, "cpu.rt_period_us", p.to_string()));
            }
            if let Some(r) = cpu.rt_runtime {
                w.push(Write::new(&dir, "cpu.rt_runtime_us", r.to_string()));
            }
        }
        if cpu.cpus.is_some() || cpu.mems.is_some() {
            let dir = need(hierarchies, "cpuset", rel, "linux.resources.cpu.cpus/mems")?;
            if let Some(c) = &cpu.cpus {
                w.push(Write::new(&dir, "cpuset.cpus", c.clone()));
            }
            if let Some(m) = &cpu.mems {
                w.push(Write::new(&dir, "cpuset.mems", m.clone()));
            }
        }
    }

    if let Some(max) = &plan.pids_max {
        let dir = need(hierarchies, "pids", rel, "linux.resources.pids")?;
        w.push(Write::new(&dir, "pids.max", max.clone()));
    }

    if let Some(bio) = &plan.blkio {
        if bio.weight.is_some() || !bio.weight_devices.is_empty() || !bio.throttles.is_empty() {
            let dir = need(hierarchies, "blkio", rel, "linux.resources.blockIO")?;
            // CFQ's blkio.weight is gone from current kernels; BFQ has its own file.
            let (weight_file, device_file) = if dir.join("blkio.weight").exists() {
                ("blkio.weight", "blkio.weight_device")
            } else {
                ("blkio.bfq.weight", "blkio.bfq.weight_device")
            };
            if let Some(weight) = bio.weight {
                if !dir.join(weight_file).exists() {
                    return Err(CgroupError::Unsupported {
                        field: "linux.resources.blockIO.weight".into(),
                        reason: format!(
                            "neither blkio.weight nor blkio.bfq.weight exists in {} (no CFQ/BFQ scheduler)",
                            dir.display()
                        ),
                    });
                }
                w.push(Write::new(&dir, weight_file, weight.to_string()));
            }
            for (major, minor, weight) in &bio.weight_devices {
                w.push(Write::new(
                    &dir,
                    device_file,
                    format!("{major}:{minor} {weight}"),
                ));
            }
            for (kind, major, minor, rate) in &bio.throttles {
                w.push(Write::new(
                    &dir,
                    kind.v1_file(),
                    format!("{major}:{minor} {rate}"),
                ));
            }
        }
    }

    if let Some(rules) = &plan.devices {
        let dir = need(hierarchies, "devices", rel, "linux.resources.devices")?;
        // Start from "deny everything", then the spec's rules in order.
        w.push(Write::new(&dir, "devices.deny", "a"));
        for rule in rules {
            let file = if rule.allow {
                "devices.allow"
            } else {
                "devices.deny"
            };
            w.push(Write::new(&dir, file, rule.line.clone()));
        }
    }

    if !plan.hugepages.is_empty() {
        w.extend(hugetlb_writes(hierarchies, rel, &plan.hugepages)?);
    }
    Ok(w)
}

fn hugetlb_writes(
    hierarchies: &[Hierarchy],
    rel: &Path,
    limits: &[HugepageLimit],
) -> Result<Vec<Write>> {
    if let Some(dir) = controller_dir(hierarchies, "hugetlb", rel) {
        return Ok(limits
            .iter()
            .map(|h| {
                Write::new(
                    &dir,
                    &format!("hugetlb.{}.limit_in_bytes", h.page_size),
                    h.limit.to_string(),
                )
            })
            .collect());
    }
    // Hybrid: hugetlb is on the cgroup2 mount (checked in `prepare`).
    let u = hierarchies
        .iter()
        .find(|h| h.unified)
        .ok_or_else(|| CgroupError::Unsupported {
            field: "linux.resources.hugepageLimits".into(),
            reason: "no hugetlb controller mounted (v1 or cgroup2)".into(),
        })?;
    Ok(v2::hugetlb_writes(&u.mount_point.join(rel), limits))
}

/// Write FROZEN or THAWED and wait until `freezer.state` reads it back. Freezing
/// may pass through FREEZING; the state is re-requested while waiting, and a
/// freeze that does not settle is undone.
pub fn set_frozen(dir: &Path, frozen: bool) -> Result<()> {
    let target = if frozen { "FROZEN" } else { "THAWED" };
    let state_file = dir.join("freezer.state");
    let start = Instant::now();
    let mut last = String::new();
    let mut round = 0u32;
    while start.elapsed() < FREEZE_TIMEOUT {
        if round.is_multiple_of(50) {
            fsutil::write_file(&state_file, target)?;
        }
        last = fsutil::read_file(&state_file)?.trim().to_string();
        if last == target {
            return Ok(());
        }
        round += 1;
        std::thread::sleep(Duration::from_millis(if round < 10 { 1 } else { 10 }));
    }
    if frozen {
        if let Err(e) = fsutil::write_file(&state_file, "THAWED") {
            tracing::warn!(error = %e, "could not thaw after a failed freeze");
        }
    }
    Err(CgroupError::Timeout {
        op: if frozen { "freeze" } else { "thaw" },
        path: state_file,
        state: last,
        waited_ms: start.elapsed().as_millis() as u64,
    })
}

pub fn is_frozen(dir: &Path) -> Result<bool> {
    Ok(fsutil::read_file(&dir.join("freezer.state"))?.trim() == "FROZEN")
}
