//! `soar-runner`: serves SOAR functions over STOMP like resilient-circuits, and the
//! commands around it (`selftest`, `invoke`, `functions`, `customize`, `config`, `status`).

mod apps;
mod clone;
mod config_cmd;
mod customize;
mod dispatch;
mod invoke;
mod listener;
mod logging;
mod metrics;
mod recent;
mod record;
mod reload;
mod selftest;
mod service;
mod settings;
mod soar_rest;
mod status;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};
use soar_core::Registry;
use soar_core::config::AppConfig;
use soar_core::misp::{MispClient, MispConfig};
use soar_core::protected::ProtectedSecrets;

// Links every function crate, so that its `register_function!` runs.
use soar_apps as _;

use crate::dispatch::{Environment, Outcome};
use crate::listener::Listener;
use crate::logging::{LogControl, LogFormat, LogLevel};
use crate::metrics::Metrics;
use crate::settings::ResilientSettings;
use crate::soar_rest::SoarClient;

#[derive(Debug, Parser)]
#[command(
    name = "soar-runner",
    version,
    about = "Serves IBM QRadar SOAR functions (fn_misp) over STOMP, like resilient-circuits"
)]
struct Cli {
    /// The app.config to use (otherwise $APP_CONFIG_FILE, ./app.config, ~/.resilient/app.config).
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Log as human-readable text or as JSON lines.
    #[arg(long, global = true, value_enum, default_value = "text")]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Connect to SOAR and serve function messages until SIGTERM or Ctrl-C (the default);
    /// a changed app.config is drained and served again without a restart.
    Run(RunFlags),
    /// Check the config, SOAR REST, the broker and each app; exit with resilient-circuits' codes.
    Selftest {
        /// Test only these apps, by package name (fn-misp or fn_misp); several may follow.
        #[arg(short = 'l', long = "list", value_name = "APP", num_args = 1..)]
        list: Option<Vec<String>>,
    },
    /// Run one function against the configured MISP and print its result as JSON.
    Invoke {
        /// The function's API name, e.g. misp_search_attribute.
        function: String,
        /// Inputs as name=value; select inputs take the label (misp_tag_type=Attribute).
        inputs: Vec<String>,
        /// Read inputs from a JSON object in FILE, or from stdin with '-'.
        #[arg(long, value_name = "FILE")]
        inputs_json: Option<PathBuf>,
    },
    /// List the functions this binary serves.
    Functions,
    /// Summarise a running runner from its listener ([resilient] metrics_listen).
    Status {
        /// Print the JSON the runner answered instead of the summary.
        #[arg(long)]
        json: bool,
        /// The listener's address, as metrics_listen takes it (default: metrics_listen).
        #[arg(long, value_name = "ADDRESS")]
        listen: Option<String>,
    },
    /// Import the functions, message destinations, fields and playbooks into SOAR.
    Customize {
        /// Do not ask for confirmation.
        #[arg(short = 'y', long = "yes")]
        yes: bool,
        /// Import only these apps, by package name (fn-misp or fn_misp); several may follow.
        #[arg(short = 'l', long = "list", value_name = "APP", num_args = 1..)]
        list: Option<Vec<String>>,
    },
    /// Copy workflows, playbooks, functions, rules, message destinations or scripts in SOAR
    /// under new names, as resilient-sdk's clone does.
    Clone(clone::CloneArgs),
    /// Write an app.config: -c creates one, -u adds the sections it lacks.
    Config {
        /// Create a new app.config (refuses to overwrite one).
        #[arg(
            short = 'c',
            long = "create",
            conflicts_with = "update",
            required_unless_present = "update"
        )]
        create: bool,
        /// Add missing sections to an existing app.config; existing values are never touched.
        #[arg(short = 'u', long = "update")]
        update: bool,
        /// The file (default: $APP_CONFIG_FILE, else ~/.resilient/app.config).
        file: Option<PathBuf>,
    },
}

/// `run`'s flags, which win over their `[resilient]` keys as in resilient-circuits.
#[derive(Debug, Clone, clap::Args)]
struct RunFlags {
    /// Log at LEVEL: DEBUG, INFO, WARNING, ERROR or CRITICAL, in any case (over [resilient]
    /// loglevel and RUST_LOG).
    #[arg(long, value_name = "LEVEL", value_parser = LogLevel::parse)]
    loglevel: Option<LogLevel>,
    /// Write the log file in DIR as well as to stderr (over [resilient] logdir).
    #[arg(long, value_name = "DIR")]
    logdir: Option<PathBuf>,
}

/// mimalloc rather than glibc's malloc: allocation was a fifth of the runner's CPU under load
/// (JSON values are many small allocations freed on other threads).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(dispatch_command(cli)) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(1)
        }
    }
}

async fn dispatch_command(mut cli: Cli) -> anyhow::Result<ExitCode> {
    let registry = Registry::from_inventory().context("registering the functions")?;
    match cli.command.take().unwrap_or(Command::Run(RunFlags {
        loglevel: None,
        logdir: None,
    })) {
        Command::Functions => {
            print_functions(&registry);
            Ok(ExitCode::SUCCESS)
        }
        Command::Invoke {
            function,
            inputs,
            inputs_json,
        } => {
            logging::init(cli.log_format, None, Some("warn"), None, "app.log");
            let config = AppConfig::load(cli.config.as_deref())?;
            config_loaded(&config);
            let definition = registry.get(&function)?.definition();
            let base = invoke::read_inputs_json(inputs_json.as_deref())?;
            let inputs = invoke::inputs_from_pairs(definition, &inputs, base)?;
            // invoke needs no [resilient]; its result limit then keeps the default.
            let max_result_size = ResilientSettings::from_app_config(&config)
                .map(|settings| settings.max_result_size)
                .unwrap_or(DEFAULT_MAX_RESULT_SIZE);
            let environment = environment(registry, config, None, max_result_size, None);
            match invoke::run(&environment, &function, inputs).await {
                Outcome::Completed(payload) => {
                    let payload: serde_json::Value = serde_json::from_str(&payload)?;
                    println!("{}", serde_json::to_string_pretty(&payload)?);
                    let success = payload.get("success").and_then(serde_json::Value::as_bool);
                    Ok(if success == Some(false) {
                        ExitCode::from(2)
                    } else {
                        ExitCode::SUCCESS
                    })
                }
                Outcome::Failed(_, reason) => {
                    eprintln!("error: {reason}");
                    Ok(ExitCode::from(1))
                }
            }
        }
        Command::Selftest { list } => {
            let registry = match apps::select(&registry, list.as_deref()) {
                Ok(chosen) => chosen,
                Err(unknown) => return Ok(refuse_apps(&unknown)),
            };
            logging::init(cli.log_format, None, Some("warn"), None, "app.log");
            Ok(ExitCode::from(
                selftest::run(cli.config.as_deref(), registry).await,
            ))
        }
        Command::Customize { yes, list } => {
            let registry = match apps::select(&registry, list.as_deref()) {
                Ok(chosen) => chosen,
                Err(unknown) => return Ok(refuse_apps(&unknown)),
            };
            logging::init(cli.log_format, None, Some("warn"), None, "app.log");
            customize::run(cli.config.as_deref(), &registry, yes).await
        }
        Command::Clone(args) => {
            logging::init(cli.log_format, None, Some("warn"), None, "app.log");
            clone::run(cli.config.as_deref(), &args).await
        }
        Command::Config { update, file, .. } => {
            let mode = if update {
                config_cmd::ConfigMode::Update
            } else {
                config_cmd::ConfigMode::Create
            };
            config_cmd::run(mode, file.as_deref()).await
        }
        Command::Status { json, listen } => {
            let address = status_address(cli.config.as_deref(), listen.as_deref())?;
            status::run(address, json).await
        }
        Command::Run(flags) => run(cli, registry, flags).await,
    }
}

/// An app given with `-l` that is not served here: the usage error status, as
/// resilient-circuits' argument parser gives.
fn refuse_apps(unknown: &apps::UnknownApps) -> ExitCode {
    eprintln!("error: {unknown}");
    ExitCode::from(apps::UNKNOWN_APP_EXIT_CODE)
}

/// Where `status` finds the listener: `--listen`, else `[resilient] metrics_listen` (the
/// rest of the config is not checked: `status` talks to nothing else).
fn status_address(
    config: Option<&std::path::Path>,
    listen: Option<&str>,
) -> anyhow::Result<std::net::SocketAddr> {
    let config = match listen {
        Some(value) => AppConfig::parse(
            &format!("[resilient]\nmetrics_listen={value}\n"),
            "--listen",
        )?,
        None => AppConfig::load(config)?,
    };
    let section = config.require_section("resilient")?;
    settings::metrics_listen(section)?.with_context(|| {
        format!(
            "{}: [resilient] {} is not set, so the runner serves no status; set it (for example {} = 9102) and restart the runner",
            config.origin(),
            listener::KEY,
            listener::KEY
        )
    })
}

/// What every command does once `app.config` is read and logging is set up: logs what the
/// loader warned about and, in App Host, deletes the protected secrets as resilient does,
/// so that nothing else in the container can read them later.
pub(crate) fn config_loaded(config: &AppConfig) {
    for notice in config.notices() {
        tracing::warn!("{notice}");
    }
    let secrets = ProtectedSecrets::from_process();
    let Some(dir) = secrets.dir() else {
        return;
    };
    match secrets.remove_dir() {
        Ok(true) => tracing::info!(dir = %dir.display(), "removed the protected secrets once read"),
        Ok(false) => {}
        // App Host may mount the secrets read-only; resilient ignores that too.
        Err(error) if error.kind() == std::io::ErrorKind::ReadOnlyFilesystem => tracing::info!(
            dir = %dir.display(),
            "the protected secrets are on a read-only mount, so they stay there"
        ),
        Err(error) => tracing::warn!(
            dir = %dir.display(),
            %error,
            "cannot remove the protected secrets directory"
        ),
    }
}

/// What `run` serves with: a loaded `app.config`, its `[resilient]` settings and the flags
/// applied over them.
struct RunConfig {
    config: AppConfig,
    settings: ResilientSettings,
}

/// How one round of serving ended.
enum Served {
    /// SIGTERM or Ctrl-C: the runner exits.
    Stopped,
    /// `app.config` changed to this: drained, the runner starts again with it.
    Reload(Box<RunConfig>),
}

/// A round that could not start (or the broker refused for good): the exit status and why.
struct StartFailed {
    exit_code: u8,
    error: anyhow::Error,
}

impl From<anyhow::Error> for StartFailed {
    fn from(error: anyhow::Error) -> StartFailed {
        StartFailed {
            exit_code: 1,
            error,
        }
    }
}

/// Serves until SIGTERM or Ctrl-C, starting again (drained as on SIGTERM, then connected
/// afresh) whenever `app.config` changes to a config that loads; one that does not is
/// logged and the one loaded before keeps serving.
async fn run(cli: Cli, registry: Registry, flags: RunFlags) -> anyhow::Result<ExitCode> {
    // Read before app.config is (which deletes them in App Host), and kept, so that a
    // changed app.config naming a protected secret still loads.
    let secrets = ProtectedSecrets::from_process().held();
    let config = AppConfig::load_with(cli.config.as_deref(), &secrets)?;
    let mut watcher = config
        .path()
        .map(|path| reload::ConfigWatcher::new(path.to_path_buf(), reload::POLL_INTERVAL));
    let mut current = run_config(config, &flags)?;
    let settings = &current.settings;
    let log_control = logging::init(
        cli.log_format,
        flags.loglevel,
        settings.loglevel.as_deref(),
        settings.logdir.as_deref(),
        &settings.logfile,
    );
    tracing::info!(
        config = current.config.origin(),
        functions = registry.len(),
        "starting soar-runner {}",
        env!("CARGO_PKG_VERSION")
    );
    // Bound once, before anything else, so that a port in use stops the start at once; it
    // stays bound (with its counters) across reloads.
    let listener = match settings.metrics_listen {
        Some(address) => Some(Listener::bind(address).await?),
        None => None,
    };
    let stop_listener = tokio_util::sync::CancellationToken::new();
    let metrics = listener.map(|listener| {
        let names: Vec<&'static str> = registry.names().collect();
        let metrics = Arc::new(Metrics::new(&names, settings.num_workers));
        if let Some(address) = listener.local_addr() {
            tracing::info!(%address, "serving /metrics, /healthz, /readyz and /status");
        }
        tokio::spawn(listener.serve(metrics.clone(), stop_listener.clone()));
        metrics
    });
    let stop = tokio_util::sync::CancellationToken::new();
    tokio::spawn({
        let stop = stop.clone();
        async move {
            shutdown_signal().await;
            stop.cancel();
        }
    });
    // The config served before the last reload, to fall back on if the new one cannot start.
    let mut previous: Option<RunConfig> = None;
    // One record for every round: a reply kept for a message the broker will deliver again
    // is still known after a reload, so that message is answered, not run again.
    let carried = service::Carried::new(&current.settings);
    let mut round = 0u32;
    let ended = loop {
        if stop.is_cancelled() {
            break Ok(());
        }
        if round > 0
            && let Some(metrics) = &metrics
        {
            metrics.serving_again(current.settings.num_workers);
        }
        round += 1;
        match serve_round(
            &current,
            &registry,
            &metrics,
            &stop,
            watcher.as_mut().map(|watcher| (watcher, &secrets)),
            &flags,
            &carried,
        )
        .await
        {
            Ok(Served::Stopped) => break Ok(()),
            Ok(Served::Reload(next)) => {
                apply_reloaded_settings(&current.settings, &next.settings, &log_control);
                previous = Some(std::mem::replace(&mut current, *next));
            }
            Err(failed) => match previous.take() {
                Some(before) => {
                    tracing::error!(
                        error = format!("{:#}", failed.error),
                        "cannot serve with the changed app.config; serving with the config loaded before it"
                    );
                    current = before;
                }
                None => break Err(failed),
            },
        }
    };
    stop_listener.cancel();
    match ended {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(failed) => {
            tracing::error!(error = format!("{:#}", failed.error), "cannot start");
            eprintln!("error: {:#}", failed.error);
            Ok(ExitCode::from(failed.exit_code))
        }
    }
}

/// Loads `app.config` for `run` and applies the flags over `[resilient]`. Used at start and
/// for each change, so a change is held to what a start is held to.
fn run_config(config: AppConfig, flags: &RunFlags) -> anyhow::Result<RunConfig> {
    let mut settings = ResilientSettings::from_app_config(&config)?;
    if let Some(dir) = &flags.logdir {
        settings.logdir = Some(dir.clone());
    }
    Ok(RunConfig { config, settings })
}

/// One round: connects to SOAR's REST API and the broker with `current` and serves until
/// a stop or a usable change of `app.config`, then drains.
async fn serve_round(
    current: &RunConfig,
    registry: &Registry,
    metrics: &Option<Arc<Metrics>>,
    stop: &tokio_util::sync::CancellationToken,
    // Watches app.config; a change is loaded with the secrets read at start.
    watcher: Option<(&mut reload::ConfigWatcher, &ProtectedSecrets)>,
    flags: &RunFlags,
    carried: &service::Carried,
) -> Result<Served, StartFailed> {
    let settings = &current.settings;
    config_loaded(&current.config);
    // Like a MISP config error: the function fails each call until fixed, the rest serve.
    for (function, problem) in registry.config_problems(&current.config) {
        tracing::error!(function, %problem, "this function will fail until its settings are fixed");
    }
    let connected = tokio::select! {
        () = stop.cancelled() => return Ok(Served::Stopped),
        connected = connect_round(settings, registry) => connected?,
    };
    let (soar, service_config, early) = connected;
    let observer = metrics
        .clone()
        .map(|metrics| metrics as soar_core::observe::SharedObserver);
    let environment = environment(
        registry.clone(),
        current.config.clone(),
        Some(Arc::new(soar)),
        settings.max_result_size,
        observer,
    );
    let mut reloaded: Option<RunConfig> = None;
    let shutdown = async {
        let Some((watcher, secrets)) = watcher else {
            return stop.cancelled().await;
        };
        let change = watcher.next_change(
            |path| AppConfig::load_with(Some(path), secrets).map_err(anyhow::Error::from).and_then(|config| run_config(config, flags)),
            |reason| tracing::error!(%reason, "app.config changed but cannot be used; serving on with the config loaded before"),
        );
        tokio::select! {
            () = stop.cancelled() => {}
            next = change => {
                tracing::info!(
                    config = next.config.origin(),
                    "app.config changed: no new messages are taken; running functions finish, then the runner starts again with it"
                );
                reloaded = Some(next);
            }
        }
    };
    service::run(
        service_config,
        environment,
        metrics.clone(),
        Some(early),
        carried.clone(),
        shutdown,
    )
    .await
    .map_err(|error| StartFailed::from(anyhow::Error::from(error)))?;
    Ok(match reloaded {
        Some(next) => Served::Reload(Box::new(next)),
        None => Served::Stopped,
    })
}

/// SOAR's REST start-up (the broker connection opens meanwhile): who we are, and the
/// message destinations of the functions SOAR knows.
async fn connect_round(
    settings: &ResilientSettings,
    registry: &Registry,
) -> Result<(SoarClient, service::ServiceConfig, service::EarlyConnection), StartFailed> {
    // The broker connection does not depend on anything REST says, so it opens meanwhile.
    let early = {
        let settings = settings.clone();
        tokio::spawn(async move { service::connect(&settings).await })
    };
    let soar = match SoarClient::connect(settings).await {
        Ok(soar) => soar,
        Err(error) => {
            early.abort();
            return Err(StartFailed {
                exit_code: error.exit_code() as u8,
                error: error.into(),
            });
        }
    };
    tracing::info!(
        org = soar.org_name,
        org_id = soar.org_id,
        "IBM Security QRadar SOAR version: v{}",
        soar.server_version.as_deref().unwrap_or("unknown")
    );
    if !soar.actions_framework_enabled {
        early.abort();
        return Err(anyhow::anyhow!(
            "the org '{}' has the actions framework turned off, so SOAR sends no function messages",
            soar.org_name
        )
        .into());
    }
    // One lookup per function, all at once: start-up time is what an operator waits for.
    let lookups = registry.functions().map(|function| {
        let soar = &soar;
        let name = function.definition().name;
        async move { (name, soar.function_destination(name).await) }
    });
    let mut destinations = Vec::new();
    for (name, lookup) in futures_util::future::join_all(lookups).await {
        match lookup {
            Ok(Some(destination)) => destinations.push(destination),
            Ok(None) => tracing::warn!(
                function = name,
                "SOAR does not know this function, so it is skipped; run `soar-runner customize` to import it"
            ),
            Err(error) => {
                early.abort();
                return Err(anyhow::Error::from(error).into());
            }
        }
    }
    destinations.sort();
    destinations.dedup();
    if destinations.is_empty() {
        early.abort();
        return Err(anyhow::anyhow!(
            "SOAR knows none of the functions served here; run `soar-runner customize` to import them"
        )
        .into());
    }
    let service_config = service::ServiceConfig {
        settings: settings.clone(),
        org_id: soar.org_id,
        destinations,
    };
    Ok((soar, service_config, early))
}

/// Tells what a reload changes beyond the connections: the log level applies now; where
/// the log goes and the listener's address only at the next restart.
fn apply_reloaded_settings(
    before: &ResilientSettings,
    after: &ResilientSettings,
    log_control: &LogControl,
) {
    if before.loglevel != after.loglevel {
        log_control.config_changed(after.loglevel.as_deref());
    }
    if before.logdir != after.logdir || before.logfile != after.logfile {
        tracing::warn!(
            "[resilient] logdir or logfile changed; the log file moves at the next restart"
        );
    }
    if before.metrics_listen != after.metrics_listen {
        tracing::warn!(
            "[resilient] {} changed; the listener moves at the next restart",
            listener::KEY
        );
    }
}

/// Builds what every call shares; a MISP config problem is kept and reported by the
/// functions that need MISP, so the other functions keep working.
fn environment(
    registry: Registry,
    config: AppConfig,
    soar: Option<Arc<dyn soar_core::SoarRest>>,
    max_result_size: usize,
    request_observer: Option<soar_core::observe::SharedObserver>,
) -> Environment {
    let misp = match config.section("fn_misp") {
        None => Err(format!(
            "{}: the section [fn_misp] is missing; run `soar-runner config -u` to add it",
            config.origin()
        )),
        Some(_) => MispConfig::from_app_config(&config)
            .map_err(|error| error.to_string())
            .and_then(|misp| MispClient::new(misp).map_err(|error| error.to_string()))
            .map(|client| match &request_observer {
                Some(observer) => client.with_observer(observer.clone()),
                None => client,
            })
            .map(Arc::new),
    };
    if let Err(reason) = &misp {
        tracing::warn!(%reason, "the MISP functions will fail until this is fixed");
    }
    Environment {
        registry,
        config: Arc::new(config),
        misp,
        soar,
        max_result_size,
        request_observer,
    }
}

/// `[resilient] max_result_size_mb`'s default, for `invoke` without a `[resilient]` section.
const DEFAULT_MAX_RESULT_SIZE: usize = 10 * 1024 * 1024;

async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(signal) => signal,
                Err(error) => {
                    tracing::warn!(%error, "cannot watch SIGTERM; only Ctrl-C stops the runner");
                    let _ = interrupt.await;
                    return;
                }
            };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
    tracing::info!("shutdown requested: no new messages are taken; running functions finish");
}

fn print_functions(registry: &Registry) {
    for function in registry.functions() {
        let definition = function.definition();
        println!(
            "{}  ({})  destination: {}  app: {}",
            definition.name, definition.display_name, definition.destination, definition.app.name
        );
        for input in definition.inputs {
            let required = if input.required { ", required" } else { "" };
            println!(
                "    {} ({}{required})",
                input.name,
                input.input_type.soar_name()
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("soar-runner").chain(args.iter().copied()))
    }

    #[test]
    fn customize_and_selftest_take_a_list_of_apps_after_l() {
        let cli = parse(&["customize", "-y", "-l", "fn-misp", "fn_urlscanio"]).expect("parses");
        match cli.command {
            Some(Command::Customize { yes, list }) => {
                assert!(yes);
                assert_eq!(
                    list,
                    Some(vec!["fn-misp".to_string(), "fn_urlscanio".to_string()])
                );
            }
            other => panic!("customize expected, got {other:?}"),
        }
        let cli = parse(&["selftest", "--list", "fn_misp"]).expect("parses");
        match cli.command {
            Some(Command::Selftest { list }) => assert_eq!(list, Some(vec!["fn_misp".to_string()])),
            other => panic!("selftest expected, got {other:?}"),
        }
        let cli = parse(&["selftest"]).expect("parses");
        assert!(matches!(
            cli.command,
            Some(Command::Selftest { list: None })
        ));
        assert!(
            parse(&["customize", "-l"]).is_err(),
            "-l needs at least one app"
        );
    }

    #[test]
    fn run_takes_loglevel_in_any_case_and_logdir() {
        let cli = parse(&["run", "--loglevel", "debug", "--logdir", "/var/log/x"]).expect("parses");
        match cli.command {
            Some(Command::Run(flags)) => {
                assert_eq!(flags.loglevel.map(LogLevel::directive), Some("debug"));
                assert_eq!(flags.logdir, Some(PathBuf::from("/var/log/x")));
            }
            other => panic!("run expected, got {other:?}"),
        }
        let cli = parse(&["run", "--loglevel", "WARNING"]).expect("parses");
        assert!(matches!(
            cli.command,
            Some(Command::Run(RunFlags { loglevel: Some(level), logdir: None })) if level.directive() == "warn"
        ));
    }

    #[test]
    fn an_unknown_loglevel_is_refused_naming_the_flag() {
        let error = parse(&["run", "--loglevel", "LOUD"]).expect_err("LOUD is no level");
        assert_eq!(error.exit_code(), 2, "a usage error, as argparse's");
        let text = error.to_string();
        assert!(text.contains("--loglevel"), "{text}");
        assert!(text.contains("'LOUD' is no log level"), "{text}");
    }

    /// A call of the macro at the start of a line, not a mention in a comment.
    fn registers_a_function(source: &str) -> bool {
        source.lines().map(str::trim_start).any(|line| {
            line.starts_with("soar_core::register_function!(")
                || line.starts_with("register_function!(")
        })
    }

    #[test]
    fn the_registry_serves_exactly_the_fn_misp_and_urlscanio_functions() {
        let registry = Registry::from_inventory().expect("no duplicate function names");
        let names: Vec<&str> = registry.names().collect();
        assert_eq!(
            names,
            [
                "misp_add_attributes",
                "misp_add_object",
                "misp_add_sighting",
                "misp_check_warninglist",
                "misp_create_attribute",
                "misp_create_event",
                "misp_create_sighting",
                "misp_create_tag",
                "misp_delete_attribute",
                "misp_get_event",
                "misp_publish_event",
                "misp_remove_tag",
                "misp_search_attribute",
                "misp_search_events",
                "misp_sighting_list",
                "misp_update_attribute",
                "misp_verdict",
                "urlscanio",
            ]
        );
        assert_eq!(registry.destinations(), ["fn_misp", "urlscanio"]);
    }

    /// Every crate under crates/apps/<app>/ that registers a function must be linked and
    /// registered.
    #[test]
    fn every_function_crate_is_linked() {
        let apps_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../crates/apps");
        let mut on_disk: Vec<String> = Vec::new();
        for app in std::fs::read_dir(&apps_dir)
            .expect("crates/apps exists")
            .flatten()
        {
            for member in std::fs::read_dir(app.path())
                .into_iter()
                .flatten()
                .flatten()
            {
                let registers = std::fs::read_to_string(member.path().join("src/lib.rs"))
                    .map(|source| registers_a_function(&source))
                    .unwrap_or(false);
                if registers && member.path().join("Cargo.toml").exists() {
                    on_disk.push(member.file_name().to_string_lossy().into_owned());
                }
            }
        }
        on_disk.sort();
        let registry = Registry::from_inventory().expect("no duplicate function names");
        let registered: Vec<String> = registry.names().map(str::to_string).collect();
        assert_eq!(
            registered, on_disk,
            "crates/apps/linked/Cargo.toml must list every function crate"
        );
        let mut linked: Vec<&str> = soar_apps::LINKED_CRATES.to_vec();
        linked.sort_unstable();
        assert_eq!(linked, on_disk, "the linked crates are the function crates");
    }
}
