//! `coracle`: Docker's commands, driving the engine in-process (no daemon needed).

mod containers;
mod format;
mod gotemplate;
mod images;
mod networks;
mod pull;
mod system;
mod volumes;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Exit status for a failure of Coracle itself, as `docker run` uses it (also for bad flags).
pub const EXIT_ENGINE_ERROR: u8 = 125;

#[derive(Parser, Debug)]
#[command(
    name = "coracle",
    version,
    about = "A container engine: Docker's commands, no daemon needed",
    disable_help_subcommand = true
)]
struct Cli {
    /// Root of persistent state: metadata, blobs, unpacked layers, volumes.
    #[arg(
        long,
        global = true,
        env = "CORACLE_ROOT",
        default_value = "/var/lib/coracle"
    )]
    root: PathBuf,
    /// Root of runtime state: per-container state, shim sockets, netns mounts, locks.
    #[arg(
        long,
        global = true,
        env = "CORACLE_RUN_ROOT",
        default_value = "/run/coracle"
    )]
    run_root: PathBuf,
    /// A registry reachable over plain HTTP (`host[:port]`); loopback registries always are.
    #[arg(
        long = "insecure-registry",
        global = true,
        env = "CORACLE_INSECURE_REGISTRIES",
        value_delimiter = ','
    )]
    insecure_registries: Vec<String>,
    /// The default bridge network's bridge device.
    #[arg(
        long,
        global = true,
        env = "CORACLE_BRIDGE",
        default_value = "coracle0"
    )]
    bridge: String,
    /// The default bridge network's subnet (the gateway is its first address).
    #[arg(
        long = "default-subnet",
        global = true,
        env = "CORACLE_SUBNET",
        default_value = "172.17.0.0/16"
    )]
    default_subnet: String,
    /// The cgroup containers' cgroups are made under.
    #[arg(
        long,
        global = true,
        env = "CORACLE_CGROUP_PARENT",
        default_value = "/coracle"
    )]
    cgroup_parent: String,
    /// Log level for diagnostics on stderr (error, warn, info, debug, trace).
    #[arg(long, global = true, env = "CORACLE_LOG", default_value = "warn")]
    log_level: String,
    /// Debug output (same as --log-level debug).
    #[arg(short = 'D', long, global = true)]
    debug: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Create and run a new container from an image.
    #[command(disable_help_flag = true)]
    Run(containers::RunArgs),
    /// Create a new container.
    #[command(disable_help_flag = true)]
    Create(containers::CreateFlags),
    /// Start one or more stopped containers.
    Start(containers::StartArgs),
    /// Stop one or more running containers.
    Stop(containers::StopArgs),
    /// Restart one or more containers.
    Restart(containers::StopArgs),
    /// Kill one or more running containers.
    Kill(containers::KillArgs),
    /// Remove one or more containers.
    Rm(containers::RmArgs),
    /// List containers.
    Ps(containers::PsArgs),
    /// Fetch the logs of a container.
    Logs(containers::LogsArgs),
    /// Execute a command in a running container.
    Exec(containers::ExecArgs),
    /// Block until one or more containers stop, then print their exit codes.
    Wait(containers::NamesArgs),
    /// Pause all processes within one or more containers.
    Pause(containers::NamesArgs),
    /// Unpause all processes within one or more containers.
    Unpause(containers::NamesArgs),
    /// Rename a container.
    Rename(containers::RenameArgs),
    /// List port mappings or a specific mapping for the container.
    Port(containers::PortArgs),
    /// Display the running processes of a container.
    Top(containers::TopArgs),
    /// Attach local standard input, output, and error streams to a running container.
    Attach(containers::AttachArgs),
    /// Copy files/folders between a container and the local filesystem.
    Cp(containers::CpArgs),
    /// Teardown after a container's process ended (called by its shim).
    #[command(name = "container-cleanup", hide = true)]
    ContainerCleanup { id: String },
    /// Manage images.
    #[command(subcommand)]
    Image(images::ImageCommand),
    /// List images.
    Images(images::ListArgs),
    /// Download an image from a registry.
    Pull(images::PullArgs),
    /// Remove one or more images.
    Rmi(images::RmiArgs),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE.
    Tag(images::TagArgs),
    /// Load images from a tar archive (docker save format or OCI layout) or STDIN.
    Load(images::LoadArgs),
    /// Save one or more images to a tar archive (streamed to STDOUT by default).
    Save(images::SaveArgs),
    /// Import the contents of a tarball to create a file system image.
    Import(images::ImportArgs),
    /// Return low-level information on images.
    Inspect(images::InspectArgs),
    /// Log in to a registry.
    Login(images::LoginArgs),
    /// Log out from a registry.
    Logout(images::LogoutArgs),
    /// Manage networks.
    #[command(subcommand)]
    Network(networks::NetworkCommand),
    /// Manage volumes.
    #[command(subcommand)]
    Volume(volumes::VolumeCommand),
    /// Show the Coracle version information.
    Version,
    /// Display system-wide information.
    Info,
    /// Manage Coracle (df, prune, info).
    #[command(subcommand)]
    System(system::SystemCommand),
    /// Display a live stream of container(s) resource usage statistics (--no-stream: one).
    Stats(system::StatsArgs),
}

/// What every command needs: the roots, the default network and registry settings.
pub struct Context {
    pub root: PathBuf,
    pub run_root: PathBuf,
    pub bridge: String,
    pub subnet: String,
    pub cgroup_parent: String,
    pub insecure_registries: Vec<String>,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => 0,
                _ => EXIT_ENGINE_ERROR,
            };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let level = if cli.debug {
        "debug"
    } else {
        cli.log_level.as_str()
    };
    let level = level
        .parse::<tracing_subscriber::filter::LevelFilter>()
        .unwrap_or(tracing_subscriber::filter::LevelFilter::WARN);
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(level)
        .init();
    let ctx = Context {
        root: cli.root,
        run_root: cli.run_root,
        bridge: cli.bridge,
        subnet: cli.default_subnet,
        cgroup_parent: cli.cgroup_parent,
        insecure_registries: cli.insecure_registries,
    };
    // `run` and `create` fail with 125 like docker's; the other commands with 1.
    let default_failure = match cli.command {
        Command::Run(_) | Command::Create(_) => EXIT_ENGINE_ERROR,
        _ => 1,
    };
    let result = match cli.command {
        Command::Run(args) => containers::run(&ctx, &args),
        Command::Create(args) => containers::create(&ctx, &args),
        Command::Start(args) => containers::start(&ctx, &args),
        Command::Stop(args) => containers::stop(&ctx, &args),
        Command::Restart(args) => containers::restart(&ctx, &args),
        Command::Kill(args) => containers::kill(&ctx, &args),
        Command::Rm(args) => containers::rm(&ctx, &args),
        Command::Ps(args) => containers::ps(&ctx, &args),
        Command::Logs(args) => containers::logs(&ctx, &args),
        Command::Exec(args) => containers::exec(&ctx, &args),
        Command::Wait(args) => containers::wait(&ctx, &args),
        Command::Pause(args) => containers::pause(&ctx, &args),
        Command::Unpause(args) => containers::unpause(&ctx, &args),
        Command::Rename(args) => containers::rename(&ctx, &args),
        Command::Port(args) => containers::port(&ctx, &args),
        Command::Top(args) => containers::top(&ctx, &args),
        Command::Attach(args) => containers::attach(&ctx, &args),
        Command::Cp(args) => containers::cp(&ctx, &args),
        Command::ContainerCleanup { id } => containers::container_cleanup(&ctx, &id),
        Command::Image(cmd) => images::image_command(&ctx, cmd),
        Command::Images(args) => images::list(&ctx, &args),
        Command::Pull(args) => images::pull(&ctx, &args),
        Command::Rmi(args) => images::rmi(&ctx, &args),
        Command::Tag(args) => images::tag(&ctx, &args),
        Command::Load(args) => images::load(&ctx, &args),
        Command::Save(args) => images::save(&ctx, &args),
        Command::Import(args) => images::import(&ctx, &args),
        Command::Inspect(args) => images::inspect_top(&ctx, &args),
        Command::Login(args) => images::login(&ctx, &args),
        Command::Logout(args) => images::logout(&ctx, &args),
        Command::Network(cmd) => networks::network_command(&ctx, cmd),
        Command::Volume(cmd) => volumes::volume_command(&ctx, cmd),
        Command::Version => system::version(&ctx),
        Command::Info => system::info(&ctx),
        Command::System(cmd) => system::system_command(&ctx, cmd),
        Command::Stats(args) => system::stats(&ctx, &args),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            let code = match e.downcast_ref::<containers::Exit>() {
                Some(exit) => exit.0,
                None => default_failure,
            };
            let prefix = if code == EXIT_ENGINE_ERROR {
                "coracle: Error response from daemon"
            } else {
                "Error"
            };
            eprintln!("{prefix}: {e:#}");
            ExitCode::from(code)
        }
    }
}
