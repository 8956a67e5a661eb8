//! The engine: containers from image to running process and back, over the store, the image
//! store, the network manager, the runtime and one `coracle-shim` per container.
//!
//! Where a container's things live:
//!
//! ```text
//! <root>/engine.db                     the store (records, states, exec sessions, volumes)
//! <root>/image/snapshots/<id>/merged   its root file system (an overlay mount while it runs)
//! <root>/containers/<id>/bundle/       config.json, the OCI bundle the shim runs
//! <root>/containers/<id>/{hostname,hosts,resolv.conf}   bind-mounted into it
//! <root>/containers/<id>/<id>-json.log its log (Docker's json-file format), kept by the shim
//! <root>/network/                      networks, endpoints, address allocations
//! <root>/init/coracle-init             the PID 1 of `run --init`, mounted read-only
//! <run-root>/netns/<id>                its network namespace, pinned by a bind mount
//! <run-root>/shims/<short id>/         shim.pid, status.json, attach.sock, ctl.sock
//! <run-root>/runtime/<id>/             the runtime's state
//! ```
//!
//! Order matters in both directions. `start` mounts the root file system, makes the network
//! namespace and the endpoint, writes the /etc files and the bundle, then starts the shim;
//! every step is undone in reverse if a later one fails. Teardown (`cleanup`) runs the same
//! steps backwards and goes on past errors, so a container can always be removed, also after a
//! crash half-way through.

mod copy;
mod create;
mod init_binary;
mod logs;
mod start;
mod stop;

use std::fs;
use std::path::{Path, PathBuf};

use coracle_image::store::ImageStore;
use coracle_network::bridge::BridgeConfig;
use coracle_network::manager::{Manager, ManagerConfig};

use crate::store::{ContainerRecord, State, Store, StoreError};

pub use self::create::CreateRequest;
pub use self::logs::{follow_log, read_log, rfc3339_nanos, LogLine, LogOptions};
pub use self::start::StartOutcome;
pub use self::stop::ShimStatus;

/// Where the engine keeps its state and finds its helpers.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub root: PathBuf,
    pub run_root: PathBuf,
    /// The default bridge network (`coracle0`, 172.17.0.0/16).
    pub bridge: BridgeConfig,
    /// The nftables table Coracle owns.
    pub nft_table: String,
    /// `coracle-shim`; by default next to the running executable.
    pub shim_binary: PathBuf,
    /// `coracle-dns`; by default next to the running executable. `None` disables DNS.
    pub dns_binary: Option<PathBuf>,
    /// The `coracle` binary the shim calls back when a container exits.
    pub cli_binary: PathBuf,
    /// Extra arguments for that call-back (the global flags: roots, bridge, subnet).
    pub cli_global_args: Vec<String>,
    /// The cgroup every container's cgroup is made under (`/coracle`).
    pub cgroup_parent: String,
}

impl EngineConfig {
    /// Defaults for `root` and `run_root`, with the helper binaries next to this executable.
    pub fn new(root: impl Into<PathBuf>, run_root: impl Into<PathBuf>) -> EngineConfig {
        let exe = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("coracle"));
        let sibling = |name: &str| {
            exe.parent()
                .map(|d| d.join(name))
                .unwrap_or_else(|| PathBuf::from(name))
        };
        EngineConfig {
            root: root.into(),
            run_root: run_root.into(),
            bridge: BridgeConfig::default(),
            nft_table: "coracle".to_string(),
            shim_binary: sibling("coracle-shim"),
            dns_binary: Some(sibling("coracle-dns")),
            cli_binary: exe.clone(),
            cli_global_args: Vec::new(),
            cgroup_parent: "/coracle".to_string(),
        }
    }
}

/// Why an engine operation failed. `exit_code` gives the status `coracle` exits with.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Image(#[from] coracle_image::store::StoreError),
    #[error("Unable to find image '{0}' locally")]
    NoSuchImage(String),
    #[error(transparent)]
    Spec(#[from] crate::spec::SpecError),
    #[error(transparent)]
    Parse(#[from] crate::spec::ParseError),
    #[error(transparent)]
    Snapshot(#[from] coracle_image::snapshot::SnapshotError),
    #[error("network: {0}")]
    Network(String),
    #[error("{0}")]
    Invalid(String),
    #[error("You cannot remove a {state} container {id}. Stop the container before attempting removal or force remove")]
    RemoveRunning { id: String, state: State },
    #[error("Container {0} is not running")]
    NotRunning(String),
    #[error("starting container {id}: {reason}")]
    Start {
        id: String,
        reason: String,
        exit_code: u8,
    },
    #[error("{op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Runtime(String),
    /// Several teardown steps failed; all were attempted.
    #[error("removing container {id}: {}", errors.join("; "))]
    Teardown { id: String, errors: Vec<String> },
}

impl EngineError {
    /// Docker's exit codes: 126 when the command cannot be invoked, 127 when it is not found,
    /// 125 for every other failure of the engine.
    pub fn exit_code(&self) -> u8 {
        match self {
            EngineError::Start { exit_code, .. } => *exit_code,
            _ => 125,
        }
    }
}

pub type Result<T, E = EngineError> = std::result::Result<T, E>;

/// Sleeps for polling loops: 1 ms at first, doubling up to a maximum. What is waited for
/// (an exit after a signal, a shim's last steps, the next log line) usually comes within
/// milliseconds, so the first checks come quickly; a long wait does not poll hundreds of
/// times a second.
pub(crate) struct Backoff {
    next: std::time::Duration,
    max: std::time::Duration,
}

impl Backoff {
    pub(crate) fn new(max: std::time::Duration) -> Backoff {
        let first = std::time::Duration::from_millis(1);
        Backoff {
            next: first.min(max),
            max,
        }
    }

    pub(crate) fn sleep(&mut self) {
        std::thread::sleep(self.next);
        self.grow();
    }

    /// The next pause's length.
    pub(crate) fn next(&self) -> std::time::Duration {
        self.next
    }

    /// Doubles the next pause, up to the longest.
    pub(crate) fn grow(&mut self) {
        self.next = (self.next * 2).min(self.max);
    }

    /// Back to the shortest pause (something happened).
    pub(crate) fn reset(&mut self) {
        *self = Backoff::new(self.max);
    }
}

pub(crate) fn io_err<'a>(
    op: &'static str,
    path: &'a Path,
) -> impl FnOnce(std::io::Error) -> EngineError + 'a {
    move |source| EngineError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// The engine, opened on one root. Cheap to open; every `coracle` invocation opens its own.
pub struct Engine {
    cfg: EngineConfig,
    store: Store,
    images: ImageStore,
}

impl Engine {
    pub fn open(cfg: EngineConfig) -> Result<Engine> {
        for dir in [&cfg.root, &cfg.run_root] {
            fs::create_dir_all(dir).map_err(io_err("creating", dir))?;
        }
        let store = Store::open(&cfg.root)?;
        let images = ImageStore::open(cfg.root.join("image"))?;
        Ok(Engine { cfg, store, images })
    }

    pub fn config(&self) -> &EngineConfig {
        &self.cfg
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn images(&self) -> &ImageStore {
        &self.images
    }

    /// `<root>/containers/<id>`.
    pub fn container_dir(&self, id: &str) -> PathBuf {
        self.cfg.root.join("containers").join(id)
    }

    /// An exclusive flock(2) on `<root>/containers/<id>/lock` (made by `create`), held while
    /// the container is started or torn down, so that the two never interleave across
    /// processes (a `restart`, and the call-back of the shim it stopped). `None` when the
    /// file is gone (the container is being removed, or was made before the lock existed):
    /// there is nothing left to guard. Never created here: a teardown that comes late
    /// would put a file back into a directory `rm` is removing.
    pub(crate) fn lock_container(&self, id: &str) -> Result<Option<fs::File>> {
        let path = self.container_dir(id).join("lock");
        let file = match fs::OpenOptions::new().write(true).open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err("opening", &path)(e)),
        };
        file.lock()
            .map_err(io_err("locking (flock LOCK_EX)", &path))?;
        Ok(Some(file))
    }

    pub fn bundle_dir(&self, id: &str) -> PathBuf {
        self.container_dir(id).join("bundle")
    }

    pub fn log_path(&self, id: &str) -> PathBuf {
        self.container_dir(id).join(format!("{id}-json.log"))
    }

    /// Named by the short id: unix socket paths must fit in 108 bytes, and a full id
    /// under a temporary --run-root does not (a 48-bit prefix collision is not a real risk).
    pub fn shim_dir(&self, id: &str) -> PathBuf {
        self.cfg
            .run_root
            .join("shims")
            .join(&id[..id.len().min(12)])
    }

    pub fn netns_dir(&self) -> PathBuf {
        self.cfg.run_root.join("netns")
    }

    pub fn runtime_root(&self) -> PathBuf {
        self.cfg.run_root.join("runtime")
    }

    /// The network manager (it holds a lock until dropped: open it only around a change).
    /// Address allocations live in the engine's database, next to the containers.
    pub fn network(&self) -> Result<Manager> {
        let ipam = Store::open(&self.cfg.root)?;
        Manager::open_with_ipam(
            ManagerConfig {
                state_dir: self.cfg.root.join("network"),
                run_dir: self.cfg.run_root.join("network"),
                table: self.cfg.nft_table.clone(),
                default_bridge: self.cfg.bridge.clone(),
                dns_binary: self.cfg.dns_binary.clone(),
                dns_port: 53,
                host_port_range: None,
            },
            Box::new(ipam),
        )
        .map_err(|e| EngineError::Network(e.to_string()))
    }

    /// Finds a container by id, name or unique id prefix, with its state brought up to date
    /// (a container whose shim is gone is recorded as exited or dead here).
    pub fn container(&self, reference: &str) -> Result<ContainerRecord> {
        let rec = self.store.resolve(reference)?;
        self.refresh(rec)
    }

    /// Every container (running ones only unless `all`), states brought up to date.
    pub fn list(&self, all: bool) -> Result<Vec<ContainerRecord>> {
        let mut out = Vec::new();
        for rec in self.store.list(true)? {
            let rec = self.refresh(rec)?;
            if all || rec.state.is_active() {
                out.push(rec);
            }
        }
        Ok(out)
    }
}
