//! `soar-runner`: serves SOAR functions over STOMP like resilient-circuits, and the
//! commands around it (`selftest`, `invoke`, `functions`, `customize`, `config`, `status`).

mod config_cmd;
mod customize;
mod dispatch;
mod invoke;
mod listener;
mod logging;
mod metrics;
mod recent;
mod record;
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
use crate::logging::LogFormat;
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
    /// Connect to SOAR and serve function messages until SIGTERM or Ctrl-C (the default).
    Run,
    /// Check the config, SOAR REST, the broker and each app; exit with resilient-circuits' codes.
    Selftest,
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
    },
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
    match cli.command.take().unwrap_or(Command::Run) {
        Command::Functions => {
            print_functions(&registry);
            Ok(ExitCode::SUCCESS)
        }
        Command::Invoke {
            function,
            inputs,
            inputs_json,
        } => {
            logging::init(cli.log_format, Some("warn"), None, "app.log");
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
        Command::Selftest => {
            logging::init(cli.log_format, Some("warn"), None, "app.log");
            Ok(ExitCode::from(
                selftest::run(cli.config.as_deref(), registry).await,
            ))
        }
        Command::Customize { yes } => {
            logging::init(cli.log_format, Some("warn"), None, "app.log");
            customize::run(cli.config.as_deref(), &registry, yes).await
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
        Command::Run => run(cli, registry).await,
    }
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
        Err(error) => tracing::warn!(
            dir = %dir.display(),
            %error,
            "cannot remove the protected secrets directory"
        ),
    }
}

async fn run(cli: Cli, registry: Registry) -> anyhow::Result<ExitCode> {
    let config = AppConfig::load(cli.config.as_deref())?;
    let settings = ResilientSettings::from_app_config(&config)?;
    logging::init(
        cli.log_format,
        settings.loglevel.as_deref(),
        settings.logdir.as_deref(),
        &settings.logfile,
    );
    tracing::info!(
        config = config.origin(),
        functions = registry.len(),
        "starting soar-runner {}",
        env!("CARGO_PKG_VERSION")
    );
    config_loaded(&config);
    // Like a MISP config error: the function fails each call until fixed, the rest serve.
    for (function, problem) in registry.config_problems(&config) {
        tracing::error!(function, %problem, "this function will fail until its settings are fixed");
    }
    // Bound before anything else, so that a port in use stops the start at once.
    let listener = match settings.metrics_listen {
        Some(address) => Some(Listener::bind(address).await?),
        None => None,
    };
    // The broker connection does not depend on anything REST says, so it opens meanwhile.
    let early = {
        let settings = settings.clone();
        tokio::spawn(async move { service::connect(&settings).await })
    };
    let soar = match SoarClient::connect(&settings).await {
        Ok(soar) => soar,
        Err(error) => {
            tracing::error!(%error, "cannot start");
            eprintln!("error: {error}");
            return Ok(ExitCode::from(error.exit_code() as u8));
        }
    };
    tracing::info!(
        org = soar.org_name,
        org_id = soar.org_id,
        "IBM Security QRadar SOAR version: v{}",
        soar.server_version.as_deref().unwrap_or("unknown")
    );
    anyhow::ensure!(
        soar.actions_framework_enabled,
        "the org '{}' has the actions framework turned off, so SOAR sends no function messages",
        soar.org_name
    );
    // One lookup per function, all at once: start-up time is what an operator waits for.
    let lookups = registry.functions().map(|function| {
        let soar = &soar;
        let name = function.definition().name;
        async move { (name, soar.function_destination(name).await) }
    });
    let mut destinations = Vec::new();
    for (name, lookup) in futures_util::future::join_all(lookups).await {
        match lookup? {
            Some(destination) => destinations.push(destination),
            None => tracing::warn!(
                function = name,
                "SOAR does not know this function, so it is skipped; run `soar-runner customize` to import it"
            ),
        }
    }
    destinations.sort();
    destinations.dedup();
    anyhow::ensure!(
        !destinations.is_empty(),
        "SOAR knows none of the functions served here; run `soar-runner customize` to import them"
    );
    let service_config = service::ServiceConfig {
        settings: settings.clone(),
        org_id: soar.org_id,
        destinations,
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
    let observer = metrics
        .clone()
        .map(|metrics| metrics as soar_core::observe::SharedObserver);
    let environment = environment(
        registry,
        config,
        Some(Arc::new(soar)),
        settings.max_result_size,
        observer,
    );
    let served = service::run(
        service_config,
        environment,
        metrics,
        Some(early),
        shutdown_signal(),
    )
    .await;
    stop_listener.cancel();
    served?;
    Ok(ExitCode::SUCCESS)
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
