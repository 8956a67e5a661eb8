//! The image's configuration applied to a container's, as Docker applies it:
//!
//! - **Entrypoint and Cmd**: a user `Cmd` replaces the image's; a user `Entrypoint`
//!   replaces the image's *and* drops the image's `Cmd`; `--entrypoint ""` (`[""]`) means no
//!   entrypoint at all (the user's `Cmd` is the whole command). After this step
//!   `Entrypoint` is `Some` (possibly empty) and `Cmd` is `Some` (possibly empty), and at
//!   least one of them is non-empty.
//! - **Env**: the image's list, then the user's by key (a bare `KEY` removes it), and a
//!   default `PATH` when neither has one.
//! - **WorkingDir, User, StopSignal, Healthcheck**: the user's value, else the image's.
//! - **ExposedPorts, Volumes, Labels**: the union (the user's label wins).
//! - **Anonymous volumes**: the `Volumes` targets no bind, named volume or tmpfs covers,
//!   reported for the engine to create.

use coracle_image::config::ImageConfig;

use super::config::ContainerConfig;
use super::parse::parse_volume;
use super::SpecError;

/// `PATH` when neither the image nor the user sets one.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// What applying the defaults leaves for the engine to do.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AppliedDefaults {
    /// Targets that need a new anonymous volume.
    pub anonymous_volumes: Vec<String>,
}

fn key_of(entry: &str) -> &str {
    entry.split_once('=').map(|(k, _)| k).unwrap_or(entry)
}

/// `base` then `overrides`, by key: a `KEY=value` replaces (or appends), a bare `KEY`
/// removes. Order follows `base`, new keys at the end.
pub fn merge_env(base: &[String], overrides: &[String]) -> Vec<String> {
    let mut out: Vec<String> = base.iter().filter(|e| e.contains('=')).cloned().collect();
    for o in overrides {
        let key = key_of(o);
        let pos = out.iter().position(|e| key_of(e) == key);
        match (o.contains('='), pos) {
            (true, Some(i)) => out[i] = o.clone(),
            (true, None) => out.push(o.clone()),
            (false, Some(i)) => {
                out.remove(i);
            }
            (false, None) => {}
        }
    }
    out
}

/// The command the container runs: entrypoint then cmd.
pub fn command(cfg: &ContainerConfig) -> Vec<String> {
    let mut args: Vec<String> = cfg.config.entrypoint.clone().unwrap_or_default();
    args.extend(cfg.config.cmd.clone().unwrap_or_default());
    args
}

/// Applies `image`'s defaults to `cfg` (see the module doc).
pub fn apply_image_defaults(
    cfg: &mut ContainerConfig,
    image: &ImageConfig,
) -> Result<AppliedDefaults, SpecError> {
    let img = image.config.clone().unwrap_or_default();
    let c = &mut cfg.config;

    let user_entrypoint = c.entrypoint.take();
    let user_cmd = c.cmd.take().unwrap_or_default();
    match user_entrypoint {
        Some(ep) if ep.len() == 1 && ep[0].is_empty() => {
            c.entrypoint = Some(Vec::new());
            c.cmd = Some(user_cmd);
        }
        Some(ep) if !ep.is_empty() => {
            c.entrypoint = Some(ep);
            c.cmd = Some(user_cmd);
        }
        _ => {
            c.entrypoint = Some(img.entrypoint.clone().unwrap_or_default());
            c.cmd = Some(if user_cmd.is_empty() {
                img.cmd.clone().unwrap_or_default()
            } else {
                user_cmd
            });
        }
    }
    if command(cfg).is_empty() {
        return Err(SpecError::NoCommand);
    }
    let c = &mut cfg.config;

    let mut env = merge_env(&img.env.clone().unwrap_or_default(), &c.env);
    if !env.iter().any(|e| key_of(e) == "PATH") {
        env.insert(0, format!("PATH={DEFAULT_PATH}"));
    }
    c.env = env;

    if c.working_dir.is_empty() {
        c.working_dir = img.working_dir.clone().unwrap_or_default();
    }
    if c.user.is_empty() {
        c.user = img.user.clone().unwrap_or_default();
    }
    if c.stop_signal.as_deref().unwrap_or("").is_empty() {
        c.stop_signal = img.stop_signal.clone().filter(|s| !s.is_empty());
    }
    if c.healthcheck.is_none() {
        c.healthcheck = img.healthcheck.clone();
    }
    for port in img.exposed_ports.clone().unwrap_or_default().into_keys() {
        c.exposed_ports.entry(port).or_default();
    }
    for (k, v) in img.labels.clone().unwrap_or_default() {
        c.labels.entry(k).or_insert(v);
    }
    for vol in img.volumes.clone().unwrap_or_default().into_keys() {
        c.volumes.entry(vol).or_default();
    }

    // Which volume targets are already served by a mount the user asked for.
    let mut covered: Vec<String> = cfg.host_config.tmpfs.keys().cloned().collect();
    covered.extend(cfg.host_config.mounts.iter().map(|m| m.target.clone()));
    for b in &cfg.host_config.binds {
        if let Ok(v) = parse_volume(b) {
            covered.push(v.target);
        }
    }
    let clean = |p: &str| p.trim_end_matches('/').to_string();
    let covered: Vec<String> = covered.iter().map(|p| clean(p)).collect();
    let anonymous_volumes = cfg
        .config
        .volumes
        .keys()
        .filter(|t| !covered.contains(&clean(t)))
        .cloned()
        .collect();
    Ok(AppliedDefaults { anonymous_volumes })
}

#[cfg(test)]
mod tests {
    use coracle_image::config::{ContainerDefaults, Healthcheck};

    use super::*;

    fn v(x: &[&str]) -> Vec<String> {
        x.iter().map(|s| s.to_string()).collect()
    }

    fn image(ep: Option<&[&str]>, cmd: Option<&[&str]>) -> ImageConfig {
        ImageConfig {
            config: Some(ContainerDefaults {
                entrypoint: ep.map(v),
                cmd: cmd.map(v),
                env: Some(v(&["PATH=/img/bin", "A=1", "B=2"])),
                working_dir: Some("/srv".into()),
                user: Some("web".into()),
                stop_signal: Some("SIGQUIT".into()),
                exposed_ports: Some([("80/tcp".to_string(), Default::default())].into()),
                volumes: Some(
                    [
                        ("/data".to_string(), Default::default()),
                        ("/cache".to_string(), Default::default()),
                    ]
                    .into(),
                ),
                healthcheck: Some(Healthcheck {
                    test: Some(v(&["CMD", "true"])),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn run(
        ep: Option<&[&str]>,
        cmd: Option<&[&str]>,
        img_ep: Option<&[&str]>,
        img_cmd: Option<&[&str]>,
    ) -> Result<Vec<String>, SpecError> {
        let mut c = ContainerConfig::default();
        c.config.entrypoint = ep.map(v);
        c.config.cmd = cmd.map(v);
        apply_image_defaults(&mut c, &image(img_ep, img_cmd))?;
        Ok(command(&c))
    }

    #[test]
    fn entrypoint_and_cmd_rules() {
        let ie = Some(&["/init"][..]);
        let ic = Some(&["serve", "--port", "80"][..]);
        assert_eq!(
            run(None, None, ie, ic).unwrap(),
            ["/init", "serve", "--port", "80"]
        );
        // A user Cmd replaces the image's Cmd, keeps its entrypoint.
        assert_eq!(run(None, Some(&["sh"]), ie, ic).unwrap(), ["/init", "sh"]);
        // A user entrypoint replaces the entrypoint and drops the image's Cmd.
        assert_eq!(
            run(Some(&["/bin/env"]), None, ie, ic).unwrap(),
            ["/bin/env"]
        );
        assert_eq!(
            run(Some(&["/bin/env"]), Some(&["-i"]), ie, ic).unwrap(),
            ["/bin/env", "-i"]
        );
        // --entrypoint "": no entrypoint at all.
        assert_eq!(run(Some(&[""]), Some(&["ls"]), ie, ic).unwrap(), ["ls"]);
        assert!(matches!(
            run(Some(&[""]), None, ie, ic),
            Err(SpecError::NoCommand)
        ));
        // An empty entrypoint list is "not given".
        assert_eq!(
            run(Some(&[]), None, ie, ic).unwrap(),
            ["/init", "serve", "--port", "80"]
        );
        assert_eq!(run(None, None, None, Some(&["sh"])).unwrap(), ["sh"]);
        assert_eq!(
            run(None, None, None, None).unwrap_err().to_string(),
            "no command specified"
        );
    }

    #[test]
    fn env_merging() {
        let mut c = ContainerConfig::default();
        c.config.cmd = Some(v(&["sh"]));
        c.config.env = v(&["B=user", "C=3", "A", "NOPE"]);
        apply_image_defaults(&mut c, &image(None, None)).unwrap();
        assert_eq!(c.config.env, ["PATH=/img/bin", "B=user", "C=3"]);
        assert_eq!(merge_env(&v(&["X=1"]), &v(&["X=2", "Y=3"])), ["X=2", "Y=3"]);
        let mut c = ContainerConfig::default();
        c.config.cmd = Some(v(&["sh"]));
        apply_image_defaults(&mut c, &ImageConfig::default()).unwrap();
        assert_eq!(c.config.env, [format!("PATH={DEFAULT_PATH}")]);
    }

    #[test]
    fn other_fields_and_volumes() {
        let mut c = ContainerConfig::default();
        c.config.cmd = Some(v(&["sh"]));
        c.config
            .exposed_ports
            .insert("53/udp".into(), Default::default());
        c.host_config.binds = v(&["/host:/data/:ro"]);
        let applied = apply_image_defaults(&mut c, &image(None, None)).unwrap();
        assert_eq!(applied.anonymous_volumes, ["/cache"]);
        assert_eq!(c.config.working_dir, "/srv");
        assert_eq!(c.config.user, "web");
        assert_eq!(c.config.stop_signal.as_deref(), Some("SIGQUIT"));
        assert_eq!(c.config.exposed_ports.len(), 2);
        assert!(c.config.healthcheck.is_some());

        let mut c = ContainerConfig::default();
        c.config.cmd = Some(v(&["sh"]));
        c.config.user = "1:1".into();
        c.config.working_dir = "/w".into();
        c.config.stop_signal = Some("9".into());
        apply_image_defaults(&mut c, &image(None, None)).unwrap();
        assert_eq!(
            (c.config.user.as_str(), c.config.working_dir.as_str()),
            ("1:1", "/w")
        );
        assert_eq!(c.config.stop_signal.as_deref(), Some("9"));
    }
}
