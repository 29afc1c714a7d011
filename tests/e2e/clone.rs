//! `soar-runner clone` against soar-sim after `customize`: the README's example, `--prefix`,
//! a function and a message destination copy, and the refusals.

use serde_json::{Value, json};

use crate::support::{Harness, RunnerOptions, run_to_completion};

fn find(export: &Value, list: &str, key: &str, name: &str) -> Option<Value> {
    export[list]
        .as_array()
        .and_then(|all| all.iter().find(|object| object[key] == json!(name)))
        .cloned()
}

fn accepted_imports(harness: &Harness) -> usize {
    harness
        .soar
        .imports()
        .iter()
        .filter(|import| import.status == "ACCEPTED")
        .count()
}

/// A harness whose SOAR has run `customize -y`, and the config that reaches it.
async fn customized(name: &str) -> (Harness, std::path::PathBuf) {
    let harness = Harness::start().await;
    let config = harness.write_config(name, &RunnerOptions::default());
    let (code, output) = run_to_completion(&config, &["customize", "-y"]);
    assert_eq!(code, 0, "customize -y: {output}");
    (harness, config)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clone_copies_the_readme_workflow_under_a_new_name_and_uuid() {
    let (harness, config) = customized("clone-readme").await;
    let before = harness.soar.export();
    let original = find(
        &before,
        "workflows",
        "programmatic_name",
        "example_misp_search_attribute",
    )
    .expect("customize imported the README's workflow");
    let imports_before = accepted_imports(&harness);

    let (code, output) = run_to_completion(
        &config,
        &[
            "clone",
            "--workflow",
            "example_misp_search_attribute",
            "misp_search_attack",
        ],
    );
    assert_eq!(code, 0, "{output}");
    assert!(
        output.contains("cloned workflow 'example_misp_search_attribute' as 'misp_search_attack'"),
        "{output}"
    );
    assert_eq!(accepted_imports(&harness), imports_before + 1);

    let after = harness.soar.export();
    let copy = find(
        &after,
        "workflows",
        "programmatic_name",
        "misp_search_attack",
    )
    .unwrap_or_else(|| panic!("SOAR holds the copy: {}", after["workflows"]));
    assert_eq!(
        find(
            &after,
            "workflows",
            "programmatic_name",
            "example_misp_search_attribute"
        ),
        Some(original.clone()),
        "the original is untouched"
    );
    let uuid = copy["uuid"].as_str().unwrap_or_default();
    let groups: Vec<usize> = uuid.split('-').map(str::len).collect();
    assert_eq!(groups, [8, 4, 4, 4, 12], "a uuid: {uuid}");
    assert_ne!(copy["uuid"], original["uuid"], "a uuid of its own");
    assert_ne!(
        copy["workflow_id"], original["workflow_id"],
        "a new workflow"
    );
    assert_eq!(copy["export_key"], json!("misp_search_attack"));
    assert_eq!(copy["content"]["workflow_id"], json!("misp_search_attack"));
    assert_eq!(copy["object_type"], original["object_type"]);
    let xml = copy["content"]["xml"].as_str().unwrap_or_default();
    assert!(
        xml.contains(r#"<process id="misp_search_attack""#),
        "the BPMN names the copy: {xml}"
    );
    let function_uuid = find(&after, "functions", "name", "misp_search_attribute")
        .map(|function| function["uuid"].clone())
        .unwrap_or_default();
    assert!(
        xml.contains(&format!(
            r#"uuid="{}""#,
            function_uuid.as_str().unwrap_or_default()
        )),
        "the copy calls the same function"
    );
    assert_eq!(
        after["workflows"].as_array().map(Vec::len),
        before["workflows"].as_array().map(|all| all.len() + 1)
    );
    assert!(
        harness.soar.requests().iter().any(|request| request.line()
            == format!("POST /rest/orgs/{}/configurations/exports", harness.org_id)),
        "clone asked SOAR for an export"
    );

    // Cloning again: the new name is taken, so nothing is imported.
    let (code, output) = run_to_completion(
        &config,
        &[
            "clone",
            "--workflow",
            "example_misp_search_attribute",
            "misp_search_attack",
        ],
    );
    assert_ne!(code, 0, "{output}");
    assert!(
        output.contains("a workflow named 'misp_search_attack' already exists in SOAR"),
        "{output}"
    );
    // An original SOAR does not have: named, with the workflows it has.
    let (code, output) = run_to_completion(
        &config,
        &["clone", "--workflow", "example_misp_nothing", "misp_x"],
    );
    assert_ne!(code, 0, "{output}");
    assert!(
        output.contains("workflow 'example_misp_nothing' is not in SOAR")
            && output.contains("example_misp_search_attribute"),
        "{output}"
    );
    // One name only, without --prefix.
    let (code, output) = run_to_completion(&config, &["clone", "--function", "misp_create_event"]);
    assert_ne!(code, 0, "{output}");
    assert!(
        output.contains("--function takes the original's name and the new name"),
        "{output}"
    );
    assert_eq!(
        accepted_imports(&harness),
        imports_before + 1,
        "a refused clone imports nothing"
    );
    assert!(harness.soar.unexpected_requests().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clone_with_a_prefix_rewires_the_copies_and_copies_functions_and_destinations() {
    let (harness, config) = customized("clone-prefix").await;

    let (code, output) = run_to_completion(
        &config,
        &[
            "clone",
            "--prefix",
            "v2",
            "--workflow",
            "example_misp_search_attribute",
            "example_misp_create_event",
            "--rule",
            "Example: MISP Search Attribute",
            "--function",
            "misp_search_attribute",
        ],
    );
    assert_eq!(code, 0, "{output}");
    let export = harness.soar.export();
    for name in [
        "v2_example_misp_search_attribute",
        "v2_example_misp_create_event",
    ] {
        assert!(
            find(&export, "workflows", "programmatic_name", name).is_some(),
            "{name}: {}",
            export["workflows"]
        );
    }
    let rule = find(
        &export,
        "actions",
        "name",
        "v2_Example: MISP Search Attribute",
    )
    .expect("the rule's copy");
    assert_eq!(
        rule["workflows"],
        json!(["v2_example_misp_search_attribute"]),
        "the copied rule launches the copied workflow"
    );
    let function = find(&export, "functions", "name", "v2_misp_search_attribute")
        .expect("the function's copy");
    assert_eq!(function["destination_handle"], json!("fn_misp"));
    let workflow = find(
        &export,
        "workflows",
        "programmatic_name",
        "v2_example_misp_search_attribute",
    )
    .unwrap_or_default();
    let xml = workflow["content"]["xml"].as_str().unwrap_or_default();
    assert!(
        xml.contains(&format!(
            r#"uuid="{}""#,
            function["uuid"].as_str().unwrap_or_default()
        )),
        "the copied workflow calls the copied function: {xml}"
    );
    assert!(
        find(&export, "functions", "name", "misp_search_attribute").is_some(),
        "the original function stays"
    );

    // A function on its own: SOAR then routes it like the original.
    let (code, output) = run_to_completion(
        &config,
        &["clone", "-f", "misp_create_event", "misp_create_event_copy"],
    );
    assert_eq!(code, 0, "{output}");
    let export = harness.soar.export();
    let copy = find(&export, "functions", "name", "misp_create_event_copy").expect("the copy");
    let original = find(&export, "functions", "name", "misp_create_event").expect("the original");
    assert_eq!(copy["display_name"], json!("misp_create_event_copy"));
    assert_ne!(copy["uuid"], original["uuid"]);
    assert_eq!(
        copy["view_items"], original["view_items"],
        "the same inputs"
    );

    // A message destination: the copy keeps the readers customize gave the original.
    let (code, output) = run_to_completion(
        &config,
        &["clone", "--message_destination", "fn_misp", "fn_misp_copy"],
    );
    assert_eq!(code, 0, "{output}");
    let copied = harness
        .soar
        .message_destinations()
        .into_iter()
        .find(|destination| destination["programmatic_name"] == json!("fn_misp_copy"))
        .expect("the destination's copy");
    assert!(
        copied["api_keys"]
            .as_array()
            .is_some_and(|keys| keys.contains(&json!(soar_sim::rest::API_KEY_HANDLE))),
        "the API key may read the copy: {copied}"
    );
    assert!(harness.soar.unexpected_requests().is_empty());
}
