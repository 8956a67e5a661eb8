//! `pull`, `login`, `logout`: the registry client of `coracle-image` with Docker's output.

use std::io::{self, IsTerminal, Write};
use std::path::PathBuf;

use anyhow::{Context as _, Result};
use coracle_image::content::Digest;
use coracle_image::reference::Reference;
use coracle_image::registry::{
    self, fetch_image, NoProgress, Platform, ProgressRenderer, PullObserver, PullOptions,
};
use coracle_image::store::{familiar, ImageRecord, ImageStore, NewImage};

use crate::Context;

/// Docker's credentials file: `$DOCKER_CONFIG/config.json` or `~/.docker/config.json`, so
/// `coracle login` and `docker login` share logins.
fn credentials_file() -> PathBuf {
    registry::default_config_path()
}

/// The registry host a `login SERVER` argument names.
fn credentials_key(server: &str) -> String {
    match server {
        "docker.io" | "index.docker.io" => "registry-1.docker.io".to_string(),
        s => s
            .trim_start_matches("https://")
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_string(),
    }
}

pub fn pull(
    ctx: &Context,
    store: &ImageStore,
    raw: &str,
    reference: &Reference,
    platform: Option<&str>,
    quiet: bool,
) -> Result<ImageRecord> {
    let mut opts = PullOptions {
        insecure_registries: ctx.insecure_registries.clone(),
        credentials_file: Some(credentials_file()),
        ..PullOptions::default()
    };
    if let Some(p) = platform {
        opts.platform = p.parse::<Platform>().map_err(anyhow::Error::msg)?;
    }
    let mut out = io::stdout().lock();
    if !quiet {
        if !typed_tag_or_digest(raw) {
            writeln!(out, "Using default tag: latest")?;
        }
        out.flush()?;
    }
    drop(out);
    // Keeps `rmi`/`prune` in other processes from collecting our blobs before they are recorded.
    let _lease = store.lease()?;
    let fetched = if quiet {
        fetch_image(store.content(), reference, &opts, &NoProgress)
    } else {
        let renderer = ProgressRenderer::new(Box::new(io::stdout()), io::stdout().is_terminal());
        let observer: &dyn PullObserver = &renderer;
        fetch_image(store.content(), reference, &opts, observer)
    }
    .with_context(|| format!("pulling {}", familiar(&reference.to_string())))?;

    let layers = fetched
        .layers
        .iter()
        .map(|d| {
            let digest = Digest::parse(d.digest().as_ref())?;
            Ok((digest, d.media_type().to_string(), d.size()))
        })
        .collect::<Result<Vec<_>>>()?;
    let tag = reference.tag.is_some().then(|| reference.clone());
    let repo_digest = format!("{}@{}", reference.name(), fetched.repo_digest);
    let record = store.commit(NewImage {
        manifest_digest: fetched.manifest_digest.clone(),
        config_digest: fetched.config_digest.clone(),
        layers,
        tag,
        repo_digest: Some(repo_digest),
    })?;
    // The renderer printed "<tag>: Pulling from", the layers, "Digest:" and "Status:"; the
    // full reference comes last, as docker prints it (also with -q).
    writeln!(io::stdout().lock(), "{reference}")?;
    Ok(record)
}

/// Whether the user typed a tag or digest (the parser fills in `latest` when they did not).
fn typed_tag_or_digest(raw: &str) -> bool {
    raw.contains('@')
        || raw
            .rsplit('/')
            .next()
            .is_some_and(|last| last.contains(':'))
}

pub fn login(_ctx: &Context, server: &str, username: &str, password: &str) -> Result<()> {
    // Checked against the registry's /v2/ first; stored only when accepted.
    registry::login(
        &credentials_key(server),
        username,
        password,
        &credentials_file(),
    )
    .with_context(|| format!("login to {server}"))?;
    Ok(())
}

pub fn logout(_ctx: &Context, server: &str) -> Result<bool> {
    Ok(registry::logout(
        &credentials_key(server),
        &credentials_file(),
    )?)
}
