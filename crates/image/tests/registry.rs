//! Registry pulls against a real docker-registry on 127.0.0.1 (see common/registry.rs).

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Mutex;
use std::time::Instant;

use common::registry::{images, Auth, Fault, FaultProxy, TestRegistry};
use coracle_image::content::{ContentStore, Digest};
use coracle_image::reference::Reference;
use coracle_image::registry::{
    fetch_image, load_credentials, login, logout, Fetched, NoProgress, Platform, ProgressRenderer,
    PullEvent, PullObserver, PullOptions, RegistryError,
};

/// Records every event.
#[derive(Default)]
struct Recorder(Mutex<Vec<PullEvent>>);

impl PullObserver for Recorder {
    fn event(&self, ev: PullEvent) {
        self.0.lock().unwrap().push(ev);
    }
}

impl Recorder {
    fn events(&self) -> Vec<PullEvent> {
        self.0.lock().unwrap().clone()
    }
}

fn reference(s: &str) -> Reference {
    s.parse().unwrap()
}

fn pull(store: &ContentStore, r: &str, opts: &PullOptions) -> Result<Fetched, RegistryError> {
    fetch_image(store, &reference(r), opts, &NoProgress)
}

/// Every blob of a pull is in the store and hashes to its name.
fn assert_complete(store: &ContentStore, f: &Fetched) {
    store.verify(&f.repo_digest).unwrap();
    store.verify(&f.manifest_digest).unwrap();
    store.verify(&f.config_digest).unwrap();
    for l in &f.layers {
        store
            .verify(&Digest::parse(l.digest().as_ref()).unwrap())
            .unwrap();
    }
    let config: oci_spec::image::ImageConfiguration =
        serde_json::from_reader(store.open_blob(&f.config_digest).unwrap()).unwrap();
    assert_eq!(config.rootfs().diff_ids().len(), f.layers.len());
    assert!(store.ingests().unwrap().is_empty(), "ingests left behind");
}

fn layer_digests(f: &Fetched) -> Vec<Digest> {
    f.layers
        .iter()
        .map(|l| Digest::parse(l.digest().as_ref()).unwrap())
        .collect()
}

#[test]
fn anonymous_pull_of_a_multi_layer_image_then_everything_already_exists() {
    let imgs = images();
    let reg = TestRegistry::start(Auth::None);
    reg.push(&imgs.layout, "big", "app/big", "v1", None);
    let tmp = tempfile::tempdir().unwrap();
    let store = ContentStore::open(tmp.path().join("content")).unwrap();
    let name = format!("{}/app/big:v1", reg.host());

    let rec = Recorder::default();
    let start = Instant::now();
    let f = fetch_image(&store, &reference(&name), &PullOptions::default(), &rec).unwrap();
    eprintln!(
        "pull of busybox + 3x20 MiB from the local registry: {:?}",
        start.elapsed()
    );
    assert_eq!(f.layers.len(), 4);
    assert_eq!(f.repo_digest, f.manifest_digest, "no index here");
    assert_complete(&store, &f);
    let events = rec.events();
    assert!(matches!(&events[0], PullEvent::Resolving { tag, .. } if tag == "v1"));
    for d in layer_digests(&f) {
        assert!(events.contains(&PullEvent::LayerComplete { digest: d.clone() }));
        assert!(events
            .iter()
            .any(|e| matches!(e, PullEvent::LayerWaiting { digest, .. } if *digest == d)));
    }
    assert!(matches!(
        events.last(),
        Some(PullEvent::Done {
            downloaded: true,
            ..
        })
    ));

    // Second pull: nothing to download, the renderer says so per layer.
    let renderer = ProgressRenderer::new(Vec::new(), false);
    let again = fetch_image(
        &store,
        &reference(&name),
        &PullOptions::default(),
        &renderer,
    )
    .unwrap();
    assert_eq!(again.repo_digest, f.repo_digest);
    let out = String::from_utf8(renderer.into_inner()).unwrap();
    for d in layer_digests(&f) {
        assert!(
            out.contains(&format!("{}: Already exists", &d.hex()[..12])),
            "{out}"
        );
    }
    assert!(out.contains("Status: Image is up to date"), "{out}");
    assert!(!out.contains("Downloading"), "{out}");
}

#[test]
fn pull_by_digest_and_clear_errors_for_unknown_tags_and_repositories() {
    let imgs = images();
    let reg = TestRegistry::start(Auth::None);
    reg.push(&imgs.layout, "small", "lib/small", "1.0", None);
    let tmp = tempfile::tempdir().unwrap();
    let store = ContentStore::open(tmp.path().join("a")).unwrap();
    let opts = PullOptions::default();
    let by_tag = pull(&store, &format!("{}/lib/small:1.0", reg.host()), &opts).unwrap();
    assert_eq!(by_tag.manifest_digest, imgs.small_manifest);

    let store2 = ContentStore::open(tmp.path().join("b")).unwrap();
    let by_digest = pull(
        &store2,
        &format!("{}/lib/small@{}", reg.host(), by_tag.repo_digest),
        &opts,
    )
    .unwrap();
    assert_eq!(by_digest.repo_digest, by_tag.repo_digest);
    assert_eq!(by_digest.layers, by_tag.layers);
    assert_complete(&store2, &by_digest);

    let missing = format!("{}/lib/small:nope", reg.host());
    let err = pull(&store2, &missing, &opts).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("manifest for {missing} not found: manifest unknown")
    );
    let unknown_digest = format!("{}/lib/small@sha256:{}", reg.host(), "0".repeat(64));
    let err = pull(&store2, &unknown_digest, &opts).unwrap_err();
    assert!(
        matches!(err, RegistryError::ManifestUnknown { .. }),
        "{err}"
    );
    let err = pull(&store2, &format!("{}/no/such:1", reg.host()), &opts).unwrap_err();
    assert!(
        err.to_string()
            .contains(&format!("repository {}/no/such not found", reg.host())),
        "{err}"
    );
}

#[test]
fn an_index_selects_the_requested_platform() {
    let imgs = images();
    let reg = TestRegistry::start(Auth::None);
    reg.push(&imgs.layout, "multi", "multi", "latest", None);
    let tmp = tempfile::tempdir().unwrap();
    let store = ContentStore::open(tmp.path().join("c")).unwrap();
    let name = format!("{}/multi", reg.host());

    let amd = pull(&store, &name, &PullOptions::default()).unwrap();
    assert_eq!(amd.repo_digest, imgs.multi_index);
    assert_eq!(amd.manifest_digest, imgs.small_manifest);
    assert_complete(&store, &amd);

    let arm_opts = PullOptions {
        platform: "linux/arm64".parse().unwrap(),
        ..PullOptions::default()
    };
    let arm = pull(&store, &name, &arm_opts).unwrap();
    assert_eq!(arm.manifest_digest, imgs.other_manifest);

    let s390 = PullOptions {
        platform: Platform {
            os: "linux".into(),
            architecture: "s390x".into(),
            variant: None,
        },
        ..PullOptions::default()
    };
    let err = pull(&store, &name, &s390).unwrap_err().to_string();
    assert!(
        err.contains("no manifest for platform linux/s390x")
            && err.contains("linux/arm64, linux/amd64"),
        "{err}"
    );
}

fn mode(p: &Path) -> u32 {
    fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[test]
fn basic_auth_with_htpasswd_login_and_logout() {
    let imgs = images();
    let reg = TestRegistry::start(Auth::Basic {
        user: "alice".into(),
        password: "s3cret".into(),
    });
    reg.push(
        &imgs.layout,
        "small",
        "private/app",
        "v1",
        Some("alice:s3cret"),
    );
    let tmp = tempfile::tempdir().unwrap();
    let store = ContentStore::open(tmp.path().join("c")).unwrap();
    let name = format!("{}/private/app:v1", reg.host());

    let err = pull(&store, &name, &PullOptions::default()).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "unauthorized: authentication required for {}/private/app",
            reg.host()
        )
    );

    let config = tmp.path().join("docker").join("config.json");
    let err = login(&reg.host(), "alice", "wrong", &config).unwrap_err();
    assert!(
        err.to_string().contains("incorrect username or password"),
        "{err}"
    );
    assert!(!config.exists(), "refused credentials were stored");

    login(&reg.host(), "alice", "s3cret", &config).unwrap();
    assert_eq!(mode(&config), 0o600);
    assert_eq!(mode(config.parent().unwrap()), 0o700);
    let creds = load_credentials(&config, &reg.host()).unwrap().unwrap();
    assert_eq!(creds.username, "alice");

    let opts = PullOptions {
        credentials_file: Some(config.clone()),
        ..PullOptions::default()
    };
    let f = pull(&store, &name, &opts).unwrap();
    assert_complete(&store, &f);

    assert!(logout(&reg.host(), &config).unwrap());
    assert!(load_credentials(&config, &reg.host()).unwrap().is_none());
    assert_eq!(mode(&config), 0o600);

    // Wrong stored credentials: a clear refusal that says the credentials were refused.
    let bad = tmp.path().join("bad.json");
    fs::write(
        &bad,
        format!(
            r#"{{"auths":{{"{}":{{"auth":"YWxpY2U6bm9wZQ=="}}}}}}"#,
            reg.host()
        ),
    )
    .unwrap();
    let store2 = ContentStore::open(tmp.path().join("d")).unwrap();
    let opts = PullOptions {
        credentials_file: Some(bad),
        ..PullOptions::default()
    };
    let err = pull(&store2, &name, &opts).unwrap_err().to_string();
    assert!(
        err.contains("unauthorized") && err.contains("credentials were refused"),
        "{err}"
    );
}

#[test]
fn bearer_token_auth_through_the_challenge() {
    let imgs = images();
    let reg = TestRegistry::start(Auth::Token {
        user: "bob".into(),
        password: "tok-pass".into(),
    });
    reg.push(
        &imgs.layout,
        "small",
        "team/tool",
        "v2",
        Some("bob:tok-pass"),
    );
    let tmp = tempfile::tempdir().unwrap();
    let store = ContentStore::open(tmp.path().join("c")).unwrap();
    let name = format!("{}/team/tool:v2", reg.host());

    // Anonymous: the token grants nothing, the registry refuses.
    let err = pull(&store, &name, &PullOptions::default()).unwrap_err();
    assert!(matches!(err, RegistryError::Unauthorized { .. }), "{err}");

    let config = tmp.path().join("config.json");
    let err = login(&reg.host(), "bob", "nope", &config).unwrap_err();
    assert!(matches!(err, RegistryError::LoginRefused { .. }), "{err}");
    login(&reg.host(), "bob", "tok-pass", &config).unwrap();

    let opts = PullOptions {
        credentials_file: Some(config),
        ..PullOptions::default()
    };
    let f = pull(&store, &name, &opts).unwrap();
    assert_complete(&store, &f);
    let seen = reg.token_server.as_ref().unwrap().seen_auth.lock().unwrap();
    assert!(seen.iter().any(|a| a.starts_with("Basic ")), "{seen:?}");
}

#[test]
fn an_interrupted_layer_resumes_from_the_partial_ingest() {
    let imgs = images();
    let reg = TestRegistry::start(Auth::None);
    reg.push(&imgs.layout, "small", "resume/me", "v1", None);
    let tmp = tempfile::tempdir().unwrap();
    let name = format!("{}/resume/me:v1", reg.host());

    // Learn the layers with a throwaway pull, then leave half of the largest layer in a
    // fresh store's ingest, as an interrupted pull does.
    let probe = ContentStore::open(tmp.path().join("probe")).unwrap();
    let f = pull(&probe, &name, &PullOptions::default()).unwrap();
    let layer = f.layers.iter().max_by_key(|l| l.size()).unwrap();
    let digest = Digest::parse(layer.digest().as_ref()).unwrap();
    let data = fs::read(reg.blob_data(&digest)).unwrap();
    let half = data.len() / 2;

    let store = ContentStore::open(tmp.path().join("c")).unwrap();
    let mut w = store
        .writer(&format!("sha256-{}", digest.hex()), None, None)
        .unwrap();
    w.write_all(&data[..half]).unwrap();
    drop(w);

    let rec = Recorder::default();
    let got = fetch_image(&store, &reference(&name), &PullOptions::default(), &rec).unwrap();
    assert_complete(&store, &got);
    let first = rec
        .events()
        .into_iter()
        .find_map(|e| match e {
            PullEvent::LayerDownloading {
                digest: d, done, ..
            } if d == digest => Some(done),
            _ => None,
        })
        .unwrap();
    assert_eq!(
        first, half as u64,
        "the download did not resume at the partial's end"
    );

    // A partial whose bytes are wrong: verification fails, the pull starts it over.
    let store = ContentStore::open(tmp.path().join("d")).unwrap();
    let mut w = store
        .writer(&format!("sha256-{}", digest.hex()), None, None)
        .unwrap();
    w.write_all(&vec![0xa5; half]).unwrap();
    drop(w);
    let got = pull(&store, &name, &PullOptions::default()).unwrap();
    assert_complete(&store, &got);
}

#[test]
fn a_corrupted_blob_is_refused_and_nothing_is_committed() {
    let imgs = images();
    let reg = TestRegistry::start(Auth::None);
    reg.push(&imgs.layout, "other", "bad/blob", "v1", None);
    let tmp = tempfile::tempdir().unwrap();
    let name = format!("{}/bad/blob:v1", reg.host());
    let probe = ContentStore::open(tmp.path().join("probe")).unwrap();
    let f = pull(&probe, &name, &PullOptions::default()).unwrap();
    let victim = layer_digests(&f).pop().unwrap();

    // Same size, one byte changed: only the digest can tell.
    let path = reg.blob_data(&victim);
    let mut data = fs::read(&path).unwrap();
    let mid = data.len() / 2;
    data[mid] ^= 0xff;
    fs::write(&path, &data).unwrap();

    let store = ContentStore::open(tmp.path().join("c")).unwrap();
    let err = pull(&store, &name, &PullOptions::default()).unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(err, RegistryError::BlobVerification { .. }),
        "{msg}"
    );
    assert!(
        msg.contains(&victim.to_string()) && msg.contains("digest mismatch"),
        "{msg}"
    );
    assert!(!store.exists(&victim));
    // Layers stopped by the failure may keep their partials for a resume; the bad one
    // is gone.
    let bad_ingest = format!("sha256-{}", victim.hex());
    assert!(
        !store.ingests().unwrap().contains(&bad_ingest),
        "the bad partial was kept"
    );
}

#[test]
fn a_dropped_connection_is_retried_and_resumed_with_range() {
    let imgs = images();
    let reg = TestRegistry::start(Auth::None);
    reg.push(&imgs.layout, "small", "flaky/net", "v1", None);
    let proxy = FaultProxy::start(reg.port, Fault::CutFirstBlobAfter(300_000));
    let tmp = tempfile::tempdir().unwrap();
    let store = ContentStore::open(tmp.path().join("c")).unwrap();
    let rec = Recorder::default();
    let name = format!("{}/flaky/net:v1", proxy.host());
    let f = fetch_image(&store, &reference(&name), &PullOptions::default(), &rec).unwrap();
    assert!(proxy.cut.load(std::sync::atomic::Ordering::SeqCst));
    assert_complete(&store, &f);
    let events = rec.events();
    let (i, retried) = events
        .iter()
        .enumerate()
        .find_map(|(i, e)| match e {
            PullEvent::LayerRetrying { digest, .. } => Some((i, digest.clone())),
            _ => None,
        })
        .expect("no retry reported");
    let resumed_at = events[i..]
        .iter()
        .find_map(|e| match e {
            PullEvent::LayerDownloading { digest, done, .. } if *digest == retried => Some(*done),
            _ => None,
        })
        .unwrap();
    assert!(
        resumed_at > 200_000,
        "the retry started at {resumed_at}, not at the partial's end"
    );
}

#[test]
fn a_server_that_ignores_range_gets_the_blob_restarted() {
    let imgs = images();
    let reg = TestRegistry::start(Auth::None);
    reg.push(&imgs.layout, "small", "norange/x", "v1", None);
    let tmp = tempfile::tempdir().unwrap();
    let probe = ContentStore::open(tmp.path().join("probe")).unwrap();
    let f = pull(
        &probe,
        &format!("{}/norange/x:v1", reg.host()),
        &PullOptions::default(),
    )
    .unwrap();
    let digest = layer_digests(&f).pop().unwrap();
    let data = fs::read(reg.blob_data(&digest)).unwrap();

    let store = ContentStore::open(tmp.path().join("c")).unwrap();
    let mut w = store
        .writer(&format!("sha256-{}", digest.hex()), None, None)
        .unwrap();
    w.write_all(&data[..data.len() / 3]).unwrap();
    drop(w);
    let proxy = FaultProxy::start(reg.port, Fault::StripRange);
    let rec = Recorder::default();
    let name = format!("{}/norange/x:v1", proxy.host());
    let got = fetch_image(&store, &reference(&name), &PullOptions::default(), &rec).unwrap();
    assert_complete(&store, &got);
    let first = rec
        .events()
        .into_iter()
        .find_map(|e| match e {
            PullEvent::LayerDownloading {
                digest: d, done, ..
            } if d == digest => Some(done),
            _ => None,
        })
        .unwrap();
    assert_eq!(
        first, 0,
        "a 200 answer to a Range request must restart the blob"
    );
}

#[test]
fn docker_schema2_manifests_and_manifest_lists() {
    let imgs = images();
    let reg = TestRegistry::start(Auth::None);
    reg.push_with(
        &imgs.layout,
        "small",
        "docker/fmt",
        "v1",
        &["--format", "v2s2"],
    );
    let tmp = tempfile::tempdir().unwrap();
    let store = ContentStore::open(tmp.path().join("c")).unwrap();
    let f = pull(
        &store,
        &format!("{}/docker/fmt:v1", reg.host()),
        &PullOptions::default(),
    )
    .unwrap();
    assert_complete(&store, &f);
    let raw = fs::read_to_string(store.blob_path(&f.manifest_digest)).unwrap();
    assert!(
        raw.contains("application/vnd.docker.distribution.manifest.v2+json"),
        "{raw}"
    );

    // skopeo turns the OCI index into a Docker manifest list with --format v2s2.
    reg.push_with(
        &imgs.layout,
        "multi",
        "docker/list",
        "v1",
        &["--format", "v2s2"],
    );
    let f = pull(
        &store,
        &format!("{}/docker/list:v1", reg.host()),
        &PullOptions::default(),
    )
    .unwrap();
    assert_complete(&store, &f);
    let raw = fs::read_to_string(store.blob_path(&f.repo_digest)).unwrap();
    assert!(
        raw.contains("application/vnd.docker.distribution.manifest.list.v2+json"),
        "{raw}"
    );
    assert_ne!(f.repo_digest, f.manifest_digest);
    let manifest = fs::read_to_string(store.blob_path(&f.manifest_digest)).unwrap();
    assert!(manifest.contains("application/vnd.docker.distribution.manifest.v2+json"));
}

#[test]
fn a_layer_held_by_another_writer_is_waited_for() {
    let imgs = images();
    let reg = TestRegistry::start(Auth::None);
    reg.push(&imgs.layout, "small", "locked/x", "v1", None);
    let tmp = tempfile::tempdir().unwrap();
    let name = format!("{}/locked/x:v1", reg.host());
    let probe = ContentStore::open(tmp.path().join("probe")).unwrap();
    let f = pull(&probe, &name, &PullOptions::default()).unwrap();
    let digest = layer_digests(&f).pop().unwrap();

    let store = ContentStore::open(tmp.path().join("c")).unwrap();
    let holder = store
        .writer(&format!("sha256-{}", digest.hex()), None, None)
        .unwrap();
    let started = Instant::now();
    let releaser = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(800));
        drop(holder);
    });
    let opts = PullOptions {
        retries: 0,
        ..PullOptions::default()
    };
    let got = pull(&store, &name, &opts).unwrap();
    releaser.join().unwrap();
    assert!(started.elapsed() >= std::time::Duration::from_millis(800));
    assert_complete(&store, &got);
}

#[test]
fn unavailable_answers_are_retried_and_a_dead_registry_is_named() {
    let imgs = images();
    let mut reg = TestRegistry::start(Auth::None);
    reg.push(&imgs.layout, "small", "busy/x", "v1", None);
    let tmp = tempfile::tempdir().unwrap();
    let store = ContentStore::open(tmp.path().join("c")).unwrap();
    // Three 503s: the manifest request, then blobs; five retries cover them.
    let proxy = FaultProxy::start(reg.port, Fault::Unavailable(3));
    let f = pull(
        &store,
        &format!("{}/busy/x:v1", proxy.host()),
        &PullOptions::default(),
    )
    .unwrap();
    assert_complete(&store, &f);
    assert!(proxy.failed.load(std::sync::atomic::Ordering::SeqCst) > 3);

    // Without retries a 503 is an error that names the registry and the status.
    let store = ContentStore::open(tmp.path().join("d")).unwrap();
    let proxy = FaultProxy::start(reg.port, Fault::Unavailable(100));
    let opts = PullOptions {
        retries: 0,
        ..PullOptions::default()
    };
    let err = pull(&store, &format!("{}/busy/x:v1", proxy.host()), &opts)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&proxy.host()) && err.contains("HTTP 503") && err.contains("try later"),
        "{err}"
    );

    reg.stop();
    let err = pull(&store, &format!("{}/busy/x:v1", reg.host()), &opts)
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with(&format!("registry {}: cannot fetch a manifest", reg.host())),
        "{err}"
    );
}
