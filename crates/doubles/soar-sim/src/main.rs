//! `soar-sim`: the SOAR stand-in as a program, for the demo and for trying the runner by hand.
//!
//! `soar-sim serve` answers SOAR's REST API (the runner's start-up calls, attachments,
//! imports); `soar-sim play` sends each fn_misp use case through the broker the way SOAR
//! does and prints every reply SOAR would see.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};
use serde_json::{Value, json};
use soar_sim::{Driver, DriverOptions, Reply, SoarRestOptions, SoarRestSim};
use soar_stomp::TlsOptions;

#[derive(Debug, Parser)]
#[command(
    name = "soar-sim",
    about = "A SOAR stand-in: REST API and function messages"
)]
struct Arguments {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve SOAR's REST API until stopped.
    Serve {
        #[arg(long, default_value = "127.0.0.1:8444")]
        listen: SocketAddr,
        #[arg(long, default_value_t = 201)]
        org_id: u64,
        /// Serve HTTPS with a generated certificate for localhost.
        #[arg(long)]
        tls: bool,
        /// Where to write the CA certificate the runner must trust.
        #[arg(long, requires = "tls")]
        ca_out: Option<PathBuf>,
    },
    /// Play each fn_misp use case through the broker and print what SOAR sees.
    Play {
        #[arg(long, default_value = "localhost")]
        broker_host: String,
        #[arg(long)]
        broker_port: u16,
        /// The broker's CA certificate; without it the broker is reached over plain STOMP.
        #[arg(long)]
        broker_ca: Option<PathBuf>,
        #[arg(long, default_value_t = 201)]
        org_id: i64,
    },
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let arguments = Arguments::parse();
    let result = match arguments.command {
        Command::Serve {
            listen,
            org_id,
            tls,
            ca_out,
        } => serve(listen, org_id, tls, ca_out).await,
        Command::Play {
            broker_host,
            broker_port,
            broker_ca,
            org_id,
        } => play(broker_host, broker_port, broker_ca, org_id).await,
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("soar-sim: {error}");
            std::process::ExitCode::from(1)
        }
    }
}

async fn serve(
    listen: SocketAddr,
    org_id: u64,
    tls: bool,
    ca_out: Option<PathBuf>,
) -> Result<(), String> {
    let sim = SoarRestSim::try_start(SoarRestOptions {
        listen: Some(listen),
        org_id,
        tls,
        functions: soar_sim::KNOWN_FUNCTIONS
            .iter()
            .map(|(name, destination)| (name.to_string(), destination.to_string()))
            .collect(),
        ..SoarRestOptions::default()
    })
    .await
    .map_err(|error| error.to_string())?;
    if let (Some(path), Some(pem)) = (&ca_out, sim.ca_pem()) {
        std::fs::write(path, pem)
            .map_err(|error| format!("cannot write {}: {error}", path.display()))?;
    }
    println!("{}", sim.url());
    tokio::signal::ctrl_c()
        .await
        .map_err(|error| error.to_string())?;
    Ok(())
}

async fn play(
    broker_host: String,
    broker_port: u16,
    broker_ca: Option<PathBuf>,
    org_id: i64,
) -> Result<(), String> {
    let tls = broker_ca.map(|ca| TlsOptions {
        ca_file: Some(ca),
        verify: true,
        server_name: broker_host.clone(),
    });
    let driver = Driver::connect(DriverOptions {
        host: broker_host,
        port: broker_port,
        tls,
        org_id,
        destinations: vec!["fn_misp".into()],
    })
    .await
    .map_err(|error| error.to_string())?;

    let created = call(
        &driver,
        "Create a MISP event from an incident",
        "misp_create_event",
        json!({"misp_event_name": "Phishing campaign 42", "misp_distribution": 0,
               "misp_analysis_level": 1, "misp_threat_level": 2}),
    )
    .await?;
    let event_id = created
        .as_ref()
        .and_then(|results| results.pointer("/content/Event/id"))
        .and_then(Value::as_str)
        .and_then(|id| id.parse::<i64>().ok())
        .ok_or("the event was not created, so the other use cases cannot run")?;
    call(
        &driver,
        "Add an artifact to the event as an attribute",
        "misp_create_attribute",
        json!({"misp_event_id": event_id, "misp_attribute_value": "evil.example.com",
               "misp_attribute_type": "hostname"}),
    )
    .await?;
    call(
        &driver,
        "Mark the artifact as sighted",
        "misp_create_sighting",
        json!({"misp_sighting": "evil.example.com"}),
    )
    .await?;
    call(
        &driver,
        "Tag the event with TLP",
        "misp_create_tag",
        json!({"misp_tag_type": {"id": 3963, "name": "Event"}, "misp_tag_name": "tlp:amber",
               "misp_event_id": event_id}),
    )
    .await?;
    call(
        &driver,
        "Tag the attribute with a MITRE ATT&CK technique",
        "misp_create_tag",
        json!({"misp_tag_type": {"id": 3964, "name": "Attribute"},
               "misp_tag_name": "misp-galaxy:mitre-attack-pattern=\"Phishing - T1566\"",
               "misp_event_id": event_id, "misp_attribute_value": "evil.example.com"}),
    )
    .await?;
    call(
        &driver,
        "Search MISP for the artifact",
        "misp_search_attribute",
        json!({"misp_attribute_value": "evil.example.com"}),
    )
    .await?;
    call(
        &driver,
        "List the event's sightings",
        "misp_sighting_list",
        json!({"misp_event_id": event_id}),
    )
    .await?;
    call(
        &driver,
        "A bad input, answered with a clear error",
        "misp_create_attribute",
        json!({"misp_event_id": event_id, "misp_attribute_value": "10.0.0.1",
               "misp_attribute_type": "ip-destination"}),
    )
    .await?;
    Ok(())
}

/// Sends one call, prints every reply, and returns the final reply's results.
async fn call(
    driver: &Driver,
    title: &str,
    function: &str,
    inputs: Value,
) -> Result<Option<Value>, String> {
    println!("\n=== {title}: {function}");
    println!("inputs: {inputs}");
    let correlation_id = driver
        .invoke("fn_misp", function, inputs)
        .await
        .map_err(|error| error.to_string())?;
    let replies = driver
        .wait_final(&correlation_id, Duration::from_secs(60))
        .await
        .map_err(|error| error.to_string())?;
    let mut results = None;
    for reply in &replies {
        print_reply(reply);
        if reply.complete {
            results = reply.results.clone();
        }
    }
    Ok(results)
}

fn print_reply(reply: &Reply) {
    let kind = match (reply.complete, reply.message_type) {
        (false, _) => "status",
        (true, 0) => "done",
        (true, _) => "ERROR",
    };
    println!("  [{kind}] {}", reply.message);
    let Some(results) = &reply.results else {
        return;
    };
    let mut shown = serde_json::Map::new();
    for key in ["success", "reason", "tags", "attack_techniques"] {
        if let Some(value) = results.get(key) {
            shown.insert(key.to_string(), value.clone());
        }
    }
    let content = results.get("content").map(summarise).unwrap_or_default();
    println!(
        "         results: {} content: {content}",
        Value::Object(shown)
    );
}

/// A one-line view of MISP's content: the object kind and its id or value.
fn summarise(content: &Value) -> String {
    let text = content.to_string();
    if text.len() <= 160 {
        return text;
    }
    let cut: String = text.chars().take(157).collect();
    format!("{cut}...")
}
