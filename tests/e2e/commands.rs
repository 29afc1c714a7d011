//! The resilient-circuits commands the original's README names: `customize -l`,
//! `selftest -l` and `run --loglevel/--logdir`.

use std::time::Duration;

use serde_json::Value;

use super::support::{self, Harness, Runner, RunnerOptions, run_to_completion};

/// The programmatic names of the message destinations, and the functions' API names, an
/// import holds.
fn destinations_and_functions(definition: &Value) -> (Vec<String>, Vec<String>) {
    let names = |list: &str, key: &str| -> Vec<String> {
        definition[list]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|item| item[key].as_str().map(str::to_string))
            .collect()
    };
    (
        names("message_destinations", "programmatic_name"),
        names("functions", "name"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn customize_l_imports_only_the_apps_named_with_a_dash_or_an_underscore() {
    let harness = Harness::start().await;
    let config = harness.write_config("customize-l", &RunnerOptions::default());

    let (code, output) = run_to_completion(&config, &["customize", "-y", "-l", "fn-mips"]);
    assert_eq!(code, 2, "an unknown app is a usage error: {output}");
    assert!(
        output.contains("no app named 'fn-mips'") && output.contains("fn-misp, fn-urlscanio"),
        "the error names the app and lists the known ones: {output}"
    );
    assert!(harness.soar.imports().is_empty(), "nothing imported");

    let (code, output) = run_to_completion(&config, &["customize", "-y", "-l", "fn-misp"]);
    assert_eq!(code, 0, "{output}");
    let imports = harness.soar.imports();
    assert_eq!(imports.len(), 1, "one import, fn_misp's: {output}");
    let (destinations, functions) = destinations_and_functions(&imports[0].definition);
    assert_eq!(destinations, ["fn_misp"]);
    assert!(
        functions.contains(&"misp_search_attribute".to_string()),
        "{functions:?}"
    );
    assert!(
        functions.iter().all(|name| name.starts_with("misp_")),
        "only fn_misp's functions: {functions:?}"
    );
    let fields_of_urlscanio = imports[0].definition["fields"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|field| {
            field["name"]
                .as_str()
                .is_some_and(|name| name.starts_with("urlscanio"))
        })
        .count();
    assert_eq!(fields_of_urlscanio, 0, "no urlscanio field");
    let workflows: Vec<&str> = imports[0].definition["workflows"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|workflow| workflow["programmatic_name"].as_str())
        .collect();
    assert!(
        workflows.iter().all(|name| !name.contains("urlscan")),
        "no urlscanio workflow: {workflows:?}"
    );

    let (code, output) = run_to_completion(&config, &["customize", "-y", "--list", "fn_urlscanio"]);
    assert_eq!(code, 0, "{output}");
    let imports = harness.soar.imports();
    assert_eq!(imports.len(), 2, "{output}");
    let (destinations, functions) = destinations_and_functions(&imports[1].definition);
    assert_eq!(destinations, ["urlscanio"]);
    assert_eq!(functions, ["urlscanio"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn selftest_l_runs_only_the_chosen_apps_checks() {
    let harness = Harness::start().await;
    let config = harness.write_config("selftest-l", &RunnerOptions::default());
    harness.misp.clear_requests();

    let (code, output) = run_to_completion(&config, &["selftest", "-l", "fn-urlscanio"]);
    assert_eq!(code, 0, "{output}");
    assert!(
        output.contains("fn_urlscanio"),
        "the urlscanio app is named: {output}"
    );
    assert!(
        !output.contains("fn_misp"),
        "fn_misp is not tested: {output}"
    );
    assert_eq!(
        harness.misp.request_count(),
        0,
        "MISP was not asked anything"
    );
    assert!(
        output.contains(&format!("actions.{}.urlscanio", harness.org_id))
            && !output.contains(&format!("actions.{}.fn_misp", harness.org_id)),
        "only urlscanio's queue is probed: {output}"
    );

    let (code, output) = run_to_completion(&config, &["selftest", "-l", "fn_misp"]);
    assert_eq!(code, 0, "{output}");
    assert!(output.contains("fn_misp: ok"), "{output}");
    assert!(
        harness.misp.request_count() > 0,
        "fn_misp's check asked MISP"
    );

    let (code, output) = run_to_completion(&config, &["selftest", "-l", "fn-nope"]);
    assert_eq!(code, 2, "{output}");
    assert!(
        output.contains("known apps: fn-misp, fn-urlscanio"),
        "{output}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_loglevel_and_logdir_override_the_config_and_bad_levels_are_refused() {
    let harness = Harness::start().await;
    // The config says loglevel=info and names no logdir.
    let config = harness.write_config("flags", &RunnerOptions::default());
    let logdir = harness.dir.path().join("logs");
    let runner = Runner::spawn(
        &config,
        &[
            "run",
            "--loglevel",
            "debug",
            "--logdir",
            logdir.to_str().expect("a UTF-8 path"),
        ],
        harness.dir.path().join("flags.log"),
    );
    runner.wait_for_log("has started successfully", Duration::from_secs(30));
    let (_id, replies) = harness.search_once("198.51.100.23").await;
    assert!(
        replies.last().is_some_and(|reply| reply.complete),
        "{replies:?}"
    );
    let file = std::fs::read_to_string(logdir.join("app.log")).expect("app.log in --logdir");
    assert!(file.contains("has started successfully"), "{file}");
    assert!(
        file.lines().any(|line| line.contains(" DEBUG ")),
        "--loglevel debug wins over loglevel=info: {file}"
    );
    drop(runner);

    let (code, stdout, stderr) = support::run_split(&config, &["run", "--loglevel", "LOUD"]);
    assert_eq!(code, 2, "{stdout}{stderr}");
    assert!(
        stderr.contains("--loglevel") && stderr.contains("'LOUD' is no log level"),
        "{stderr}"
    );
}
