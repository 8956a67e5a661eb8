//! A real `docker-registry` (distribution 2.8) for tests: on 127.0.0.1 with a free port,
//! its config and storage in its own temp dir, optionally with htpasswd (bcrypt) or token
//! auth; the token service is a tiny HTTP server in the test process that signs RS256
//! JWTs with the `openssl` CLI and names its certificate in the `x5c` header. The
//! registry child is killed by its PID when the handle drops.
//!
//! Test images come from `scripts/mkimage.sh`, built once per test binary into
//! `CARGO_TARGET_TMPDIR` (deterministic, so they are reused across runs) and pushed with
//! `skopeo copy`.

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use coracle_image::content::Digest;

/// Fails loudly when a tool the tests need is missing (CI installs them).
pub fn require(bin: &str) {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(bin).is_file()))
        .unwrap_or(false);
    assert!(
        found,
        "{bin} is not installed (apt-get install docker-registry skopeo umoci openssl)"
    );
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn run(cmd: &mut Command) -> String {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// How the registry authenticates.
pub enum Auth {
    None,
    /// htpasswd with one user.
    Basic {
        user: String,
        password: String,
    },
    /// Bearer tokens from an in-process token service that accepts this user.
    Token {
        user: String,
        password: String,
    },
}

pub struct TestRegistry {
    child: Child,
    pub port: u16,
    pub dir: tempfile::TempDir,
    pub token_server: Option<TokenServer>,
}

impl TestRegistry {
    pub fn start(auth: Auth) -> TestRegistry {
        require("docker-registry");
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let storage = dir.path().join("storage");
        fs::create_dir(&storage).unwrap();
        let mut token_server = None;
        let auth_yaml = match &auth {
            Auth::None => String::new(),
            Auth::Basic { user, password } => {
                let path = dir.path().join("htpasswd");
                let hash = bcrypt::hash(password, 5).unwrap();
                fs::write(&path, format!("{user}:{hash}\n")).unwrap();
                format!(
                    "auth:\n  htpasswd:\n    realm: coracle-test\n    path: {}\n",
                    path.display()
                )
            }
            Auth::Token { user, password } => {
                let ts = TokenServer::start(dir.path(), user, password);
                let yaml = format!(
                    "auth:\n  token:\n    realm: http://127.0.0.1:{}/token\n    service: coracle-test-registry\n    issuer: coracle-test-issuer\n    rootcertbundle: {}\n",
                    ts.port,
                    ts.cert.display()
                );
                token_server = Some(ts);
                yaml
            }
        };
        let config = dir.path().join("config.yml");
        fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n{auth_yaml}",
                storage.display()
            ),
        )
        .unwrap();
        let log = fs::File::create(dir.path().join("registry.log")).unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start docker-registry");
        let reg = TestRegistry {
            child,
            port,
            dir,
            token_server,
        };
        reg.wait_ready();
        reg
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) {
                let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
                let req = format!("GET /v2/ HTTP/1.0\r\nHost: 127.0.0.1:{}\r\n\r\n", self.port);
                let mut first = String::new();
                if s.write_all(req.as_bytes()).is_ok()
                    && BufReader::new(s).read_line(&mut first).is_ok()
                    && first.starts_with("HTTP/1.")
                {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "docker-registry did not answer on 127.0.0.1:{}: {}",
                self.port,
                fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
            );
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Pushes tag `tag` of an OCI layout as `name:dest_tag` (all platforms of an index).
    pub fn push(&self, layout: &Path, tag: &str, name: &str, dest_tag: &str, creds: Option<&str>) {
        let extra: Vec<&str> = creds.map(|c| vec!["--dest-creds", c]).unwrap_or_default();
        self.push_with(layout, tag, name, dest_tag, &extra);
    }

    /// [`push`](Self::push) with more `skopeo copy` options (`--format v2s2`, creds...).
    pub fn push_with(&self, layout: &Path, tag: &str, name: &str, dest_tag: &str, extra: &[&str]) {
        require("skopeo");
        let mut cmd = Command::new("skopeo");
        cmd.args(["copy", "--quiet", "--all", "--dest-tls-verify=false"]);
        cmd.args(extra);
        cmd.arg(format!("oci:{}:{tag}", layout.display()))
            .arg(format!("docker://{}/{name}:{dest_tag}", self.host()));
        run(&mut cmd);
    }

    /// Where the registry keeps a blob's bytes.
    pub fn blob_data(&self, digest: &Digest) -> PathBuf {
        let hex = digest.hex();
        self.dir
            .path()
            .join("storage/docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }

    /// Stops the registry now (the handle stays usable for its paths).
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        // Our own child, by PID (Child::kill sends SIGKILL to exactly this process).
        self.stop();
    }
}

/// The token service: `GET /token?service=..&scope=..` with Basic credentials of its one
/// user gets the requested actions; anonymous requests get a token with no access; wrong
/// credentials get 401.
pub struct TokenServer {
    pub port: u16,
    cert: PathBuf,
    stop: Arc<AtomicBool>,
    /// Every request's `Authorization` header (or "" when absent).
    pub seen_auth: Arc<Mutex<Vec<String>>>,
    thread: Option<thread::JoinHandle<()>>,
}

impl TokenServer {
    fn start(dir: &Path, user: &str, password: &str) -> TokenServer {
        require("openssl");
        let key = dir.join("token.key");
        let cert = dir.join("token.crt");
        run(Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "2",
                "-subj",
                "/CN=coracle-test-token",
            ])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert));
        let der = Command::new("openssl")
            .args(["x509", "-outform", "DER", "-in"])
            .arg(&cert)
            .output()
            .unwrap()
            .stdout;
        let x5c = base64::engine::general_purpose::STANDARD.encode(der);
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let seen_auth = Arc::new(Mutex::new(Vec::new()));
        let expected = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
        );
        let (stop2, seen2, user) = (stop.clone(), seen_auth.clone(), user.to_owned());
        let thread = thread::spawn(move || {
            while !stop2.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let _ = stream.set_nonblocking(false);
                        serve_token(stream, &key, &x5c, &expected, &user, &seen2);
                    }
                    Err(_) => thread::sleep(Duration::from_millis(20)),
                }
            }
        });
        TokenServer {
            port,
            cert,
            stop,
            seen_auth,
            thread: Some(thread),
        }
    }
}

impl Drop for TokenServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn b64url(data: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(data)
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(if b[i] == b'+' { b' ' } else { b[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn serve_token(
    stream: TcpStream,
    key: &Path,
    x5c: &str,
    expected_auth: &str,
    user: &str,
    seen: &Mutex<Vec<String>>,
) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    let mut authorization = String::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            if k.eq_ignore_ascii_case("authorization") {
                authorization = v.trim().to_owned();
            }
        }
    }
    seen.lock().unwrap().push(authorization.clone());
    let target = request_line.split_whitespace().nth(1).unwrap_or("");
    let query = target.split_once('?').map_or("", |(_, q)| q);
    let mut service = String::new();
    let mut access = Vec::new();
    for pair in query.split('&') {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let v = percent_decode(v);
        match k {
            "service" => service = v,
            "scope" => {
                // repository:NAME:ACTIONS
                let parts: Vec<&str> = v.splitn(3, ':').collect();
                if let [kind, name, actions] = parts.as_slice() {
                    access.push(serde_json::json!({
                        "type": kind, "name": name,
                        "actions": actions.split(',').collect::<Vec<_>>(),
                    }));
                }
            }
            _ => {}
        }
    }
    let mut out = stream;
    let (status, body) = if authorization.is_empty() {
        // Anonymous: a valid token that grants nothing.
        (200, Some(Vec::new()))
    } else if authorization == expected_auth {
        (200, Some(access))
    } else {
        (401, None)
    };
    let body = match body {
        Some(access) => {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_secs();
            let header = serde_json::json!({"typ": "JWT", "alg": "RS256", "x5c": [x5c]});
            let claims = serde_json::json!({
                "iss": "coracle-test-issuer",
                "sub": if authorization.is_empty() { "" } else { user },
                "aud": service,
                "exp": now + 600, "nbf": now - 60, "iat": now - 60,
                "jti": format!("{now}-{}", std::process::id()),
                "access": access,
            });
            let signing_input = format!(
                "{}.{}",
                b64url(header.to_string().as_bytes()),
                b64url(claims.to_string().as_bytes())
            );
            let mut child = Command::new("openssl")
                .args(["dgst", "-sha256", "-sign"])
                .arg(key)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .unwrap();
            child
                .stdin
                .take()
                .unwrap()
                .write_all(signing_input.as_bytes())
                .unwrap();
            let mut sig = Vec::new();
            child.stdout.take().unwrap().read_to_end(&mut sig).unwrap();
            assert!(child.wait().unwrap().success());
            let token = format!("{signing_input}.{}", b64url(&sig));
            serde_json::json!({"token": token, "access_token": token, "expires_in": 600})
                .to_string()
        }
        None => r#"{"errors":[{"code":"UNAUTHORIZED","message":"bad credentials"}]}"#.into(),
    };
    let reason = if status == 200 { "OK" } else { "Unauthorized" };
    let _ = write!(
        out,
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}

/// Test images in one OCI layout, built once per test binary (see the module docs):
/// - `big`: busybox + 3 layers of 20 MiB;
/// - `small`: busybox + 2 layers of 1 MiB;
/// - `other`: busybox + 2 different layers of 1 MiB;
/// - `multi`: an OCI index with `other` as linux/arm64 and `small` as linux/amd64.
pub struct Images {
    pub layout: PathBuf,
    pub multi_index: Digest,
    pub small_manifest: Digest,
    pub other_manifest: Digest,
}

pub fn images() -> &'static Images {
    static IMAGES: OnceLock<Images> = OnceLock::new();
    IMAGES.get_or_init(build_images)
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .unwrap()
        .to_owned()
}

fn layout_manifest(layout: &Path, tag: &str) -> (Digest, u64) {
    let index: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(layout.join("index.json")).unwrap()).unwrap();
    let m = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == tag)
        .unwrap_or_else(|| panic!("tag {tag} not in {}", layout.display()));
    (
        Digest::parse(m["digest"].as_str().unwrap()).unwrap(),
        m["size"].as_u64().unwrap(),
    )
}

fn build_images() -> Images {
    require("umoci");
    let layout = Path::new(env!("CARGO_TARGET_TMPDIR")).join("registry-test-images-v1");
    if !layout.join("done").is_file() {
        let tmp = layout.with_extension(format!("tmp{}", std::process::id()));
        let _ = fs::remove_dir_all(&tmp);
        let mk = repo_root().join("scripts/mkimage.sh");
        for (tag, layers, mb) in [("big", "3", "20"), ("small", "2", "1"), ("other", "2", "1")] {
            run(Command::new(&mk).arg(&tmp).arg(tag).args([
                "--layers",
                layers,
                "--layer-mb",
                mb,
                "--seed",
                tag,
            ]));
        }
        let (small, small_size) = layout_manifest(&tmp, "small");
        let (other, other_size) = layout_manifest(&tmp, "other");
        let entry = |d: &Digest, size: u64, arch: &str| {
            serde_json::json!({
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": d.to_string(), "size": size,
                "platform": {"os": "linux", "architecture": arch},
            })
        };
        let index = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [entry(&other, other_size, "arm64"), entry(&small, small_size, "amd64")],
        })
        .to_string();
        let digest = Digest::of_bytes(index.as_bytes());
        fs::write(tmp.join("blobs/sha256").join(digest.hex()), &index).unwrap();
        let index_path = tmp.join("index.json");
        let mut top: serde_json::Value =
            serde_json::from_str(&fs::read_to_string(&index_path).unwrap()).unwrap();
        top["manifests"]
            .as_array_mut()
            .unwrap()
            .push(serde_json::json!({
                "mediaType": "application/vnd.oci.image.index.v1+json",
                "digest": digest.to_string(), "size": index.len(),
                "annotations": {"org.opencontainers.image.ref.name": "multi"},
            }));
        fs::write(&index_path, top.to_string()).unwrap();
        fs::write(tmp.join("done"), "").unwrap();
        let _ = fs::remove_dir_all(&layout);
        fs::rename(&tmp, &layout).unwrap();
    }
    let (small_manifest, _) = layout_manifest(&layout, "small");
    let (other_manifest, _) = layout_manifest(&layout, "other");
    let (multi_index, _) = layout_manifest(&layout, "multi");
    Images {
        layout,
        multi_index,
        small_manifest,
        other_manifest,
    }
}

/// What [`FaultProxy`] does to the traffic it forwards.
#[derive(Debug, Clone, Copy)]
pub enum Fault {
    /// Closes the first blob response longer than this many bytes after that many.
    CutFirstBlobAfter(usize),
    /// Removes `Range` from every request, like a server that does not do ranges.
    StripRange,
    /// Answers the first this many manifest and blob requests with 503.
    Unavailable(usize),
}

/// A one-request-per-connection HTTP proxy on 127.0.0.1 in front of a test registry that
/// injects a [`Fault`].
pub struct FaultProxy {
    pub port: u16,
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
    /// Whether a response was cut.
    pub cut: Arc<AtomicBool>,
    /// How many 503s were sent.
    pub failed: Arc<AtomicUsize>,
}

impl FaultProxy {
    pub fn start(upstream: u16, fault: Fault) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let cut = Arc::new(AtomicBool::new(false));
        let failed = Arc::new(AtomicUsize::new(0));
        let (stop2, cut2, failed2) = (stop.clone(), cut.clone(), failed.clone());
        let thread = thread::spawn(move || {
            while !stop2.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((client, _)) => {
                        let (cut, failed) = (cut2.clone(), failed2.clone());
                        thread::spawn(move || proxy_one(client, upstream, fault, &cut, &failed));
                    }
                    Err(_) => thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        FaultProxy {
            port,
            stop,
            thread: Some(thread),
            cut,
            failed,
        }
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn proxy_one(
    client: TcpStream,
    upstream: u16,
    fault: Fault,
    cut: &AtomicBool,
    failed: &AtomicUsize,
) {
    let _ = client.set_nonblocking(false);
    let _ = client.set_read_timeout(Some(Duration::from_secs(10)));
    let mut reader = BufReader::new(client.try_clone().unwrap());
    let mut head = String::new();
    let mut is_blob = false;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        if head.is_empty() {
            is_blob = line.contains("/blobs/");
        }
        if line == "\r\n" {
            break;
        }
        let name = line.split(':').next().unwrap_or("").to_ascii_lowercase();
        if name == "connection" || (name == "range" && matches!(fault, Fault::StripRange)) {
            continue;
        }
        head.push_str(&line);
    }
    head.push_str("Connection: close\r\n\r\n");
    let mut client = client;
    if let Fault::Unavailable(n) = fault {
        let counted = head.contains("/manifests/") || head.contains("/blobs/");
        if counted && failed.fetch_add(1, Ordering::SeqCst) < n {
            let body = r#"{"errors":[{"code":"UNAVAILABLE","message":"try later"}]}"#;
            let _ = write!(
                client,
                "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            return;
        }
    }
    let Ok(mut up) = TcpStream::connect(("127.0.0.1", upstream)) else {
        return;
    };
    if up.write_all(head.as_bytes()).is_err() {
        return;
    }
    let limit = match fault {
        Fault::CutFirstBlobAfter(n) if is_blob && !cut.load(Ordering::SeqCst) => Some(n),
        _ => None,
    };
    let mut buf = [0u8; 16 * 1024];
    let mut sent = 0usize;
    loop {
        let n = match up.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if let Some(limit) = limit.filter(|l| sent + n > *l) {
            if !cut.swap(true, Ordering::SeqCst) {
                let _ = client.write_all(&buf[..limit - sent]);
                let _ = client.shutdown(std::net::Shutdown::Both);
                return;
            }
        }
        if client.write_all(&buf[..n]).is_err() {
            break;
        }
        sent += n;
    }
    let _ = client.shutdown(std::net::Shutdown::Write);
}
