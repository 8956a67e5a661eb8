//! Image commands: images, pull, rmi, tag, load, save, import, inspect, image prune,
//! login and logout — the shapes and words `docker` prints.

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, IsTerminal, Read, Write};
use std::path::PathBuf;

use anyhow::{bail, Context as _, Result};
use clap::{Args, Subcommand};
use coracle_image::archive::{self, ImageChanges, ImportOptions, LoadedImage, SaveItem};
use coracle_image::reference::Reference;
use coracle_image::store::{familiar, ImageRecord, ImageStore, NewImage, Removed};
use serde_json::{json, Value};

use crate::format::{self, human_size_precision, table};
use crate::Context;

#[derive(Subcommand, Debug)]
pub enum ImageCommand {
    /// List images.
    #[command(visible_alias = "list")]
    Ls(ListArgs),
    /// Display detailed information on one or more images.
    Inspect(InspectArgs),
    /// Remove one or more images.
    Rm(RmiArgs),
    /// Remove unused images.
    Prune(PruneArgs),
    /// Download an image from a registry.
    Pull(PullArgs),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE.
    Tag(TagArgs),
    /// Load images from a tar archive or STDIN.
    Load(LoadArgs),
    /// Save one or more images to a tar archive.
    Save(SaveArgs),
    /// Import the contents of a tarball to create a file system image.
    Import(ImportArgs),
}

pub fn image_command(ctx: &Context, cmd: ImageCommand) -> Result<u8> {
    match cmd {
        ImageCommand::Ls(a) => list(ctx, &a),
        ImageCommand::Inspect(a) => inspect(ctx, &a),
        ImageCommand::Rm(a) => rmi(ctx, &a),
        ImageCommand::Prune(a) => prune(ctx, &a),
        ImageCommand::Pull(a) => pull(ctx, &a),
        ImageCommand::Tag(a) => tag(ctx, &a),
        ImageCommand::Load(a) => load(ctx, &a),
        ImageCommand::Save(a) => save(ctx, &a),
        ImageCommand::Import(a) => import(ctx, &a),
    }
}

/// The image store of the engine's root.
pub fn open_store(ctx: &Context) -> Result<ImageStore> {
    let root = ctx.root.join("image");
    ImageStore::open(&root).with_context(|| format!("opening the image store {}", root.display()))
}

fn parse_reference(input: &str) -> Result<Reference> {
    input.parse::<Reference>().map_err(anyhow::Error::from)
}

// --- images ---------------------------------------------------------------------------

#[derive(Args, Debug)]
pub struct ListArgs {
    /// Show all images (intermediate images are not kept, so the same as without).
    #[arg(short, long)]
    all: bool,
    /// Only show image IDs.
    #[arg(short, long)]
    quiet: bool,
    /// Show digests.
    #[arg(long)]
    digests: bool,
    /// Don't truncate output.
    #[arg(long)]
    no_trunc: bool,
    /// Filter output: `dangling=true|false`, `reference=PATTERN`.
    #[arg(short, long)]
    filter: Vec<String>,
    /// `table`, `json`, or a Go template such as `{{.Repository}}:{{.Tag}}`.
    #[arg(long)]
    format: Option<String>,
    /// Only images of this repository (and tag).
    repository: Option<String>,
}

/// One row of `docker images`.
struct Row<'a> {
    image: &'a ImageRecord,
    repository: String,
    tag: String,
    digest: String,
}

fn rows(images: &[ImageRecord]) -> Vec<Row<'_>> {
    let mut rows = Vec::new();
    for image in images {
        let digest_for = |repo: &str| {
            image
                .repo_digests
                .iter()
                .filter_map(|rd| rd.rsplit_once('@'))
                .find(|(name, _)| familiar(name) == repo || *name == repo)
                .map_or("<none>".to_string(), |(_, d)| d.to_string())
        };
        if image.tags.is_empty() {
            // Dangling, or known only by digest.
            let repo = image
                .repo_digests
                .first()
                .and_then(|rd| rd.rsplit_once('@'))
                .map_or("<none>".to_string(), |(name, _)| familiar(name));
            let digest = digest_for(&repo);
            rows.push(Row {
                image,
                repository: repo,
                tag: "<none>".into(),
                digest,
            });
            continue;
        }
        for full in &image.tags {
            let short = familiar(full);
            let (repo, tag) = split_repo_tag(&short);
            let digest = digest_for(&repo);
            rows.push(Row {
                image,
                repository: repo,
                tag,
                digest,
            });
        }
    }
    rows
}

/// `busybox:latest` → (`busybox`, `latest`); a registry port is not a tag.
fn split_repo_tag(name: &str) -> (String, String) {
    match name.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => (repo.to_string(), tag.to_string()),
        _ => (name.to_string(), "<none>".to_string()),
    }
}

fn row_json(row: &Row<'_>, no_trunc: bool) -> Value {
    let created = row
        .image
        .created
        .as_deref()
        .and_then(format::parse_rfc3339)
        .unwrap_or(row.image.added);
    let size = human_size_precision(row.image.size, 3);
    json!({
        "Containers": "N/A",
        "CreatedAt": format::go_time_utc(created),
        "CreatedSince": format::ago(created),
        "Digest": row.digest,
        "ID": if no_trunc { row.image.id.to_string() } else { row.image.short_id().to_string() },
        "Repository": row.repository,
        "SharedSize": "N/A",
        "Size": size,
        "Tag": row.tag,
        "UniqueSize": "N/A",
        "VirtualSize": size,
    })
}

fn row_matches(row: &Row<'_>, filters: &[(String, String)], repository: Option<&str>) -> bool {
    if let Some(want) = repository {
        let (want_repo, want_tag) = match want.rsplit_once(':') {
            Some((r, t)) if !t.contains('/') => (r, Some(t)),
            _ => (want, None),
        };
        let same_repo = row.repository == want_repo
            || want_repo
                .parse::<Reference>()
                .is_ok_and(|r| r.familiar_name() == row.repository);
        if !same_repo || want_tag.is_some_and(|t| t != row.tag) {
            return false;
        }
    }
    filters.iter().all(|(key, value)| match key.as_str() {
        "dangling" => (row.image.tags.is_empty()) == (value == "true"),
        "reference" => {
            glob_match(value, &format!("{}:{}", row.repository, row.tag))
                || glob_match(value, &row.repository)
        }
        _ => true,
    })
}

/// `*` matches any run of characters other than `/`, as Docker's reference filter does.
fn glob_match(pattern: &str, text: &str) -> bool {
    fn go(p: &[u8], t: &[u8]) -> bool {
        match p.split_first() {
            None => t.is_empty(),
            Some((b'*', rest)) => (0..=t.len())
                .take_while(|&i| i == 0 || t[i - 1] != b'/')
                .any(|i| go(rest, &t[i..])),
            Some((c, rest)) => t.first() == Some(c) && go(rest, &t[1..]),
        }
    }
    go(pattern.as_bytes(), text.as_bytes())
}

fn parse_filters(raw: &[String]) -> Result<Vec<(String, String)>> {
    raw.iter()
        .map(|f| {
            let (k, v) = f
                .split_once('=')
                .with_context(|| format!("bad format of filter (expected name=value): {f}"))?;
            match k {
                "dangling" if v == "true" || v == "false" => Ok((k.to_string(), v.to_string())),
                "dangling" => bail!("invalid filter 'dangling={v}'"),
                "reference" => Ok((k.to_string(), v.to_string())),
                _ => bail!("invalid filter '{k}'"),
            }
        })
        .collect()
}

pub fn list(ctx: &Context, args: &ListArgs) -> Result<u8> {
    let filters = parse_filters(&args.filter)?;
    let store = open_store(ctx)?;
    let images = store.list()?;
    let rows: Vec<Row<'_>> = rows(&images)
        .into_iter()
        .filter(|r| row_matches(r, &filters, args.repository.as_deref()))
        .collect();
    let mut out = io::stdout().lock();
    if args.quiet {
        let mut seen = BTreeSet::new();
        for row in &rows {
            let id = if args.no_trunc {
                row.image.id.to_string()
            } else {
                row.image.short_id().to_string()
            };
            if seen.insert(id.clone()) {
                writeln!(out, "{id}")?;
            }
        }
        return Ok(0);
    }
    match args.format.as_deref() {
        Some(t) if t != "table" => {
            let values: Vec<Value> = rows.iter().map(|r| row_json(r, args.no_trunc)).collect();
            write!(
                out,
                "{}",
                format::render_rows(t, &format::IMAGES_COLUMNS, &values)?
            )?;
        }
        _ => {
            let mut header = vec!["REPOSITORY", "TAG"];
            if args.digests {
                header.push("DIGEST");
            }
            header.extend(["IMAGE ID", "CREATED", "SIZE"]);
            let mut cells = vec![header.into_iter().map(String::from).collect::<Vec<_>>()];
            for row in &rows {
                let j = row_json(row, args.no_trunc);
                let mut line = vec![row.repository.clone(), row.tag.clone()];
                if args.digests {
                    line.push(row.digest.clone());
                }
                line.push(j["ID"].as_str().unwrap_or_default().to_string());
                line.push(j["CreatedSince"].as_str().unwrap_or_default().to_string());
                line.push(j["Size"].as_str().unwrap_or_default().to_string());
                cells.push(line);
            }
            write!(out, "{}", table(&cells))?;
        }
    }
    Ok(0)
}

// --- inspect --------------------------------------------------------------------------

#[derive(Args, Debug)]
pub struct InspectArgs {
    /// Format the output using a Go template (`{{.Id}}`, `{{json .Config}}`).
    #[arg(short, long)]
    format: Option<String>,
    /// Return JSON for a specified type (container or image).
    #[arg(long = "type")]
    kind: Option<String>,
    #[arg(required = true)]
    names: Vec<String>,
}

/// Docker's image inspect object.
pub fn inspect_json(store: &ImageStore, image: &ImageRecord) -> Result<Value> {
    let config = store.config(image)?;
    let lower: Vec<String> = image
        .layers
        .iter()
        .rev()
        .map(|l| store.layer_dir(&l.diff_id).display().to_string())
        .collect();
    Ok(json!({
        "Id": image.id.to_string(),
        "RepoTags": image.tags.iter().map(|t| familiar(t)).collect::<Vec<_>>(),
        "RepoDigests": image.repo_digests.iter().map(|t| familiar(t)).collect::<Vec<_>>(),
        "Parent": "",
        "Comment": config.history.last().and_then(|h| h.comment.clone()).unwrap_or_default(),
        "Created": config.created.clone().unwrap_or_default(),
        "DockerVersion": "",
        "Author": config.author.clone().unwrap_or_default(),
        "Config": config.config.clone().map(|c| serde_json::to_value(c).expect("config serializes")),
        "Architecture": config.architecture,
        "Variant": config.variant,
        "Os": config.os,
        "Size": image.size,
        "GraphDriver": {
            "Name": "overlay",
            "Data": { "LowerDir": lower.join(":") },
        },
        "RootFS": {
            "Type": "layers",
            "Layers": config.rootfs.diff_ids.iter().map(|d| d.to_string()).collect::<Vec<_>>(),
        },
        "Metadata": { "LastTagTime": format::rfc3339_utc(image.added) },
        "Descriptor": {
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": image.manifest_digest.to_string(),
        },
    }))
}

/// `coracle inspect`: containers and images.
pub fn inspect_top(ctx: &Context, args: &InspectArgs) -> Result<u8> {
    crate::containers::inspect_any(
        ctx,
        &args.names,
        args.format.as_deref(),
        args.kind.as_deref(),
    )
}

pub fn inspect(ctx: &Context, args: &InspectArgs) -> Result<u8> {
    if let Some(kind) = &args.kind {
        if kind != "image" {
            bail!("unsupported --type {kind:?}: only images can be inspected so far");
        }
    }
    let store = open_store(ctx)?;
    let mut found = Vec::new();
    let mut missing = Vec::new();
    for name in &args.names {
        match store.resolve(name) {
            Ok(image) => found.push(inspect_json(&store, &image)?),
            Err(coracle_image::store::StoreError::NotFound(_)) => missing.push(name.clone()),
            Err(e) => return Err(e.into()),
        }
    }
    crate::format::print_inspect(&found, args.format.as_deref())?;
    if missing.is_empty() {
        Ok(0)
    } else {
        for name in &missing {
            eprintln!("Error: No such image: {name}");
        }
        Ok(1)
    }
}

// --- tag, rmi, prune ------------------------------------------------------------------

#[derive(Args, Debug)]
pub struct TagArgs {
    source: String,
    target: String,
}

pub fn tag(ctx: &Context, args: &TagArgs) -> Result<u8> {
    let target = parse_reference(&args.target)?;
    if target.digest.is_some() {
        bail!(
            "refusing to create a tag with a digest reference: {}",
            args.target
        );
    }
    open_store(ctx)?.tag(&args.source, &target)?;
    Ok(0)
}

#[derive(Args, Debug)]
pub struct RmiArgs {
    /// Force removal of the image.
    #[arg(short, long)]
    force: bool,
    /// Do not delete untagged parents (there are none: accepted for compatibility).
    #[arg(long)]
    no_prune: bool,
    #[arg(required = true)]
    images: Vec<String>,
}

fn print_removed(out: &mut impl Write, removed: &[Removed]) -> io::Result<()> {
    for r in removed {
        match r {
            Removed::Untagged(name) => writeln!(out, "Untagged: {name}")?,
            Removed::Deleted(id) => writeln!(out, "Deleted: {id}")?,
        }
    }
    Ok(())
}

pub fn rmi(ctx: &Context, args: &RmiArgs) -> Result<u8> {
    let store = open_store(ctx)?;
    let mut code = 0;
    for name in &args.images {
        match store.remove(name, args.force) {
            Ok(removed) => print_removed(&mut io::stdout().lock(), &removed)?,
            Err(e) => {
                eprintln!("Error: {e}");
                code = 1;
            }
        }
    }
    Ok(code)
}

#[derive(Args, Debug)]
pub struct PruneArgs {
    /// Remove all images not used by a container, not just dangling ones.
    #[arg(short, long)]
    all: bool,
    /// Do not prompt for confirmation (there is no prompt: accepted for compatibility).
    #[arg(short, long)]
    force: bool,
}

pub fn prune(ctx: &Context, args: &PruneArgs) -> Result<u8> {
    let (deleted, reclaimed) = open_store(ctx)?.prune(args.all)?;
    let mut out = io::stdout().lock();
    format::write_deleted(&mut out, "Deleted Images:", "deleted: ", &deleted)?;
    format::write_reclaimed(&mut out, reclaimed)?;
    Ok(0)
}

// --- load, save, import ---------------------------------------------------------------

#[derive(Args, Debug)]
pub struct LoadArgs {
    /// Read from a tar archive file instead of STDIN.
    #[arg(short, long)]
    input: Option<PathBuf>,
    /// Suppress the load output.
    #[arg(short, long)]
    quiet: bool,
}

/// Records loaded images and tags them with the names the archive carried.
fn record_loaded(
    store: &ImageStore,
    loaded: &LoadedImage,
) -> Result<Vec<(Option<String>, ImageRecord)>> {
    let layers: Vec<_> = loaded
        .layers
        .iter()
        .map(|d| {
            let digest = coracle_image::content::Digest::parse(d.digest().as_ref())
                .map_err(anyhow::Error::from)?;
            Ok((digest, d.media_type().to_string(), d.size()))
        })
        .collect::<Result<_>>()?;
    let new = |tag: Option<Reference>| NewImage {
        manifest_digest: loaded.manifest_digest.clone(),
        config_digest: loaded.config_digest.clone(),
        layers: layers.clone(),
        tag,
        repo_digest: None,
    };
    let mut out = Vec::new();
    if loaded.names.is_empty() {
        out.push((None, store.commit(new(None))?));
    }
    for name in &loaded.names {
        let reference = parse_reference(name)?;
        out.push((Some(name.clone()), store.commit(new(Some(reference)))?));
    }
    Ok(out)
}

pub fn load(ctx: &Context, args: &LoadArgs) -> Result<u8> {
    let store = open_store(ctx)?;
    let _lease = store.lease()?;
    let loaded = match &args.input {
        Some(path) if path.is_dir() => archive::load_layout_dir(store.content(), path)?,
        Some(path) => {
            let file = File::open(path).with_context(|| format!("open {}", path.display()))?;
            archive::load(store.content(), BufReader::with_capacity(1 << 20, file))?
        }
        None => {
            let stdin = io::stdin();
            if stdin.is_terminal() {
                bail!("requested load from stdin, but stdin is empty");
            }
            archive::load(
                store.content(),
                BufReader::with_capacity(1 << 20, stdin.lock()),
            )?
        }
    };
    let mut out = io::stdout().lock();
    for image in &loaded {
        for (name, record) in record_loaded(&store, image)? {
            if args.quiet {
                continue;
            }
            match name {
                Some(n) => writeln!(
                    out,
                    "Loaded image: {}",
                    familiar(&parse_reference(&n)?.to_string())
                )?,
                None => writeln!(out, "Loaded image ID: {}", record.id)?,
            }
        }
    }
    Ok(0)
}

#[derive(Args, Debug)]
pub struct SaveArgs {
    /// Write to a file, instead of STDOUT.
    #[arg(short, long)]
    output: Option<PathBuf>,
    #[arg(required = true)]
    images: Vec<String>,
}

pub fn save(ctx: &Context, args: &SaveArgs) -> Result<u8> {
    let store = open_store(ctx)?;
    let mut items = Vec::new();
    for name in &args.images {
        let image = store.resolve(name)?;
        // A name saves that tag; an id saves the image with all of its tags.
        let by_name = parse_reference(name)
            .ok()
            .map(|r| r.to_string())
            .filter(|full| image.tags.contains(full));
        let names: Vec<Option<String>> = match by_name {
            Some(full) => vec![Some(full)],
            None if image.tags.is_empty() => vec![None],
            None => image.tags.iter().cloned().map(Some).collect(),
        };
        for name in names {
            items.push(SaveItem {
                name,
                manifest_digest: image.manifest_digest.clone(),
            });
        }
    }
    match &args.output {
        Some(path) => {
            // Written beside the target and renamed, so a failed save leaves no truncated file.
            let tmp = path.with_extension("coracle-partial");
            let result = (|| -> Result<()> {
                let file =
                    File::create(&tmp).with_context(|| format!("create {}", tmp.display()))?;
                let mut w = BufWriter::with_capacity(1 << 20, file);
                archive::save(store.content(), &items, &mut w)?;
                w.into_inner().map_err(|e| e.into_error())?.sync_all()?;
                std::fs::rename(&tmp, path)
                    .with_context(|| format!("rename to {}", path.display()))?;
                Ok(())
            })();
            if result.is_err() {
                let _ = std::fs::remove_file(&tmp);
            }
            result?;
        }
        None => {
            let stdout = io::stdout();
            if stdout.is_terminal() {
                bail!("cowardly refusing to save to a terminal. Use the -o flag or redirect");
            }
            let mut w = BufWriter::with_capacity(1 << 20, stdout.lock());
            archive::save(store.content(), &items, &mut w)?;
            w.flush()?;
        }
    }
    Ok(0)
}

#[derive(Args, Debug)]
pub struct ImportArgs {
    /// Apply Dockerfile instructions to the image: CMD, ENTRYPOINT, ENV, WORKDIR, USER, LABEL.
    #[arg(short, long)]
    change: Vec<String>,
    /// Set the commit message for the imported image.
    #[arg(short, long)]
    message: Option<String>,
    /// Set the platform (only this host's is supported).
    #[arg(long)]
    platform: Option<String>,
    /// A root file system tarball (plain, gzip or zstd), or `-` for STDIN.
    file: String,
    /// REPOSITORY[:TAG] to give the image.
    reference: Option<String>,
}

/// `CMD ["a","b"]` (JSON form) or `CMD a b` (shell form: run by `/bin/sh -c`).
fn exec_form(value: &str) -> Result<Vec<String>> {
    let value = value.trim();
    if value.starts_with('[') {
        return serde_json::from_str(value)
            .with_context(|| format!("invalid JSON array {value:?}"));
    }
    Ok(vec!["/bin/sh".into(), "-c".into(), value.into()])
}

fn parse_changes(changes: &[String]) -> Result<ImageChanges> {
    let mut out = ImageChanges::default();
    for change in changes {
        let (instruction, value) = change
            .trim()
            .split_once(char::is_whitespace)
            .with_context(|| format!("--change {change:?}: expected INSTRUCTION VALUE"))?;
        let value = value.trim();
        match instruction.to_ascii_uppercase().as_str() {
            "CMD" => out.cmd = Some(exec_form(value)?),
            "ENTRYPOINT" => out.entrypoint = Some(exec_form(value)?),
            "ENV" => {
                let entry = match value.split_once('=') {
                    Some((k, v)) => format!("{k}={v}"),
                    None => match value.split_once(char::is_whitespace) {
                        Some((k, v)) => format!("{k}={}", v.trim()),
                        None => bail!("--change {change:?}: ENV needs KEY=VALUE"),
                    },
                };
                out.env.push(entry);
            }
            "WORKDIR" => out.working_dir = Some(value.to_string()),
            "USER" => out.user = Some(value.to_string()),
            "LABEL" => {
                let (k, v) = value
                    .split_once('=')
                    .with_context(|| format!("--change {change:?}: LABEL needs KEY=VALUE"))?;
                out.labels.insert(k.to_string(), v.trim_matches('"').to_string());
            }
            other => bail!("--change {change:?}: {other} is not supported (CMD, ENTRYPOINT, ENV, WORKDIR, USER, LABEL are)"),
        }
    }
    Ok(out)
}

pub fn import(ctx: &Context, args: &ImportArgs) -> Result<u8> {
    if let Some(p) = &args.platform {
        if p != "linux/amd64" && p != "linux" {
            bail!("--platform {p:?}: only this host's platform (linux/amd64) is supported");
        }
    }
    let reference = args.reference.as_deref().map(parse_reference).transpose()?;
    let opts = ImportOptions {
        changes: parse_changes(&args.change)?,
        message: args.message.clone(),
    };
    let store = open_store(ctx)?;
    let _lease = store.lease()?;
    let loaded = if args.file == "-" {
        archive::import(
            store.content(),
            BufReader::with_capacity(1 << 20, io::stdin().lock()),
            &opts,
        )?
    } else {
        let file = File::open(&args.file).with_context(|| format!("open {}", args.file))?;
        archive::import(
            store.content(),
            BufReader::with_capacity(1 << 20, file),
            &opts,
        )?
    };
    let mut named = loaded.clone();
    named.names = reference.iter().map(|r| r.to_string()).collect();
    let records = record_loaded(&store, &named)?;
    let (_, record) = records.last().context("import recorded no image")?;
    println!("{}", record.id);
    Ok(0)
}

// --- pull, login, logout --------------------------------------------------------------

#[derive(Args, Debug)]
pub struct PullArgs {
    /// Suppress verbose output.
    #[arg(short, long)]
    quiet: bool,
    /// Platform to pull (os/arch[/variant]); defaults to this host's.
    #[arg(long)]
    platform: Option<String>,
    /// Pull all tagged images in the repository (not supported).
    #[arg(short = 'a', long)]
    all_tags: bool,
    name: String,
}

pub fn pull(ctx: &Context, args: &PullArgs) -> Result<u8> {
    if args.all_tags {
        bail!("--all-tags is not supported");
    }
    let reference = parse_reference(&args.name)?;
    let store = open_store(ctx)?;
    crate::pull::pull(
        ctx,
        &store,
        &args.name,
        &reference,
        args.platform.as_deref(),
        args.quiet,
    )?;
    Ok(0)
}

#[derive(Args, Debug)]
pub struct LoginArgs {
    /// Username.
    #[arg(short, long)]
    username: Option<String>,
    /// Password (prefer --password-stdin).
    #[arg(short, long)]
    password: Option<String>,
    /// Take the password from stdin.
    #[arg(long)]
    password_stdin: bool,
    /// The registry (default: Docker Hub).
    server: Option<String>,
}

pub fn login(ctx: &Context, args: &LoginArgs) -> Result<u8> {
    let server = args
        .server
        .clone()
        .unwrap_or_else(|| "docker.io".to_string());
    let username = match &args.username {
        Some(u) => u.clone(),
        None => bail!("a username is required (-u): interactive login is not supported"),
    };
    let password = match (&args.password, args.password_stdin) {
        (Some(_), true) => bail!("--password and --password-stdin are mutually exclusive"),
        (Some(p), false) => {
            eprintln!("WARNING! Using --password via the CLI is insecure. Use --password-stdin.");
            p.clone()
        }
        (None, true) => {
            let mut p = String::new();
            io::stdin().read_to_string(&mut p)?;
            p.trim_end_matches(['\n', '\r']).to_string()
        }
        (None, false) => bail!("a password is required (--password-stdin)"),
    };
    crate::pull::login(ctx, &server, &username, &password)?;
    println!("Login Succeeded");
    Ok(0)
}

#[derive(Args, Debug)]
pub struct LogoutArgs {
    server: Option<String>,
}

pub fn logout(ctx: &Context, args: &LogoutArgs) -> Result<u8> {
    let server = args
        .server
        .clone()
        .unwrap_or_else(|| "docker.io".to_string());
    if crate::pull::logout(ctx, &server)? {
        println!("Removing login credentials for {server}");
    } else {
        println!("Not logged in to {server}");
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repo_and_tag_split_like_docker() {
        assert_eq!(
            split_repo_tag("busybox:latest"),
            ("busybox".into(), "latest".into())
        );
        assert_eq!(
            split_repo_tag("localhost:5000/app:v1"),
            ("localhost:5000/app".into(), "v1".into())
        );
        assert_eq!(
            split_repo_tag("localhost:5000/app"),
            ("localhost:5000/app".into(), "<none>".into())
        );
    }

    #[test]
    fn reference_filter_globs_stop_at_slashes() {
        assert!(glob_match("busy*", "busybox"));
        assert!(glob_match("*:latest", "busybox:latest"));
        assert!(!glob_match("*", "team/app"));
        assert!(glob_match("team/*", "team/app"));
    }

    #[test]
    fn import_changes_parse() {
        let c = parse_changes(&[
            r#"CMD ["httpd", "-f"]"#.into(),
            "ENTRYPOINT /init".into(),
            "ENV A=b".into(),
            "ENV C d".into(),
            "WORKDIR /srv".into(),
            "USER 1000".into(),
            "LABEL k=v".into(),
        ])
        .unwrap();
        assert_eq!(c.cmd, Some(vec!["httpd".into(), "-f".into()]));
        assert_eq!(
            c.entrypoint,
            Some(vec!["/bin/sh".into(), "-c".into(), "/init".into()])
        );
        assert_eq!(c.env, vec!["A=b".to_string(), "C=d".to_string()]);
        assert_eq!(c.labels.get("k").map(String::as_str), Some("v"));
        assert!(parse_changes(&["VOLUME /x".into()])
            .unwrap_err()
            .to_string()
            .contains("VOLUME"));
        assert!(parse_changes(&["CMD [broken".into()]).is_err());
    }
}
