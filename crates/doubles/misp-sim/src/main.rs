//! `misp-sim`: runs the MISP simulator until Ctrl-C, for demos and manual testing.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;

/// An in-memory MISP stand-in.
#[derive(Debug, Parser)]
#[command(version)]
struct Arguments {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8443")]
    listen: SocketAddr,
    /// The API key to accept: 40 characters of [a-zA-Z0-9].
    #[arg(long, env = "MISP_SIM_KEY", default_value = misp_sim::DEFAULT_KEY)]
    key: String,
    /// Serve HTTPS with a freshly generated CA.
    #[arg(long)]
    tls: bool,
    /// Where to write the CA certificate (PEM) when serving HTTPS.
    #[arg(long, requires = "tls")]
    ca_out: Option<PathBuf>,
    /// A JSON file holding a list of events (`{"Event": …}` or bare) to start with.
    #[arg(long)]
    seed: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let arguments = Arguments::parse();
    let sim = misp_sim::MispSim::try_start(misp_sim::SimOptions {
        listen: Some(arguments.listen),
        key: Some(arguments.key),
        tls: arguments.tls,
    })
    .await
    .context("starting the simulator")?;
    if let Some(path) = &arguments.seed {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the seed file {}", path.display()))?;
        let events: Vec<serde_json::Value> = serde_json::from_str(&text)
            .with_context(|| format!("{} is not a JSON list of events", path.display()))?;
        for event in events {
            sim.seed_event(event);
        }
    }
    if let (Some(path), Some(pem)) = (&arguments.ca_out, sim.ca_pem()) {
        std::fs::write(path, pem)
            .with_context(|| format!("writing the CA certificate to {}", path.display()))?;
    }
    println!("{}", sim.url());
    tokio::signal::ctrl_c()
        .await
        .context("waiting for Ctrl-C")?;
    Ok(())
}
