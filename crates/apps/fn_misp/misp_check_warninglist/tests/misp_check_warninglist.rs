//! `misp_check_warninglist` against misp-sim: several values at once with their lists in the
//! input's order, values on no list, one value, and MISP's failures.

use fn_misp::test_support::{self, ProgressLog};
use misp_check_warninglist::MispCheckWarninglist;
use misp_sim::{MispSim, SimOptions};
use serde_json::{Value, json};
use soar_core::{Function, FunctionError, FunctionOutput, InputType};

#[test]
fn the_function_is_registered_with_its_inputs() {
    let registry = soar_core::Registry::from_inventory().expect("no two functions share a name");
    let function = registry
        .get("misp_check_warninglist")
        .expect("register_function! put it in the registry");
    let definition = function.definition();
    assert_eq!(definition, &misp_check_warninglist::DEFINITION);
    let inputs: Vec<(&str, InputType)> = definition
        .inputs
        .iter()
        .map(|input| (input.name, input.input_type))
        .collect();
    assert_eq!(inputs, [("misp_values", InputType::Textarea)]);
}

async fn sim_with_lists() -> MispSim {
    let sim = MispSim::start(SimOptions::default()).await;
    sim.seed_warninglist(json!({
        "id": "3", "name": "List of known IPv4 public DNS resolvers", "type": "cidr",
        "category": "false_positive", "list": ["8.8.8.8/32", "8.8.4.4/32"],
        "matching_attributes": ["ip-src", "ip-dst"],
    }));
    sim.seed_warninglist(json!({
        "id": "7", "name": "Top 10 domains", "type": "hostname",
        "category": "known", "list": ["google.com", "example.com"],
        "matching_attributes": ["domain", "hostname"],
    }));
    sim
}

async fn run(sim: &MispSim, inputs: Value) -> (Result<FunctionOutput, FunctionError>, Vec<String>) {
    let log = ProgressLog::new();
    let config = test_support::fn_misp_section(sim.url(), sim.key(), "");
    let context = test_support::context_from_config(&config, &log);
    let result = MispCheckWarninglist
        .run(&context, &test_support::inputs(inputs))
        .await;
    (result, log.messages())
}

#[tokio::test]
async fn each_value_gets_its_lists_in_the_inputs_order_in_one_request() {
    let sim = sim_with_lists().await;
    let (result, progress) = run(
        &sim,
        json!({"misp_values": "8.8.8[.]8\nevil.example\nwww.example[.]com\n"}),
    )
    .await;
    let output = result.expect("the values are checked");
    assert!(output.success);
    assert_eq!(
        output.extra["results"],
        json!([
            {"value": "8.8.8.8", "on_warninglist": true, "warninglists": [
                {"id": "3", "name": "List of known IPv4 public DNS resolvers", "matched": "8.8.8.8/32"}]},
            {"value": "evil.example", "on_warninglist": false, "warninglists": []},
            {"value": "www.example.com", "on_warninglist": true, "warninglists": [
                {"id": "7", "name": "Top 10 domains", "matched": "example.com"}]},
        ])
    );
    assert_eq!(
        output.content["8.8.8.8"][0]["name"],
        json!("List of known IPv4 public DNS resolvers"),
        "content is MISP's answer"
    );
    let summary = "2 of 3 values are on MISP warninglists: 8.8.8.8 (List of known IPv4 public DNS resolvers); www.example.com (Top 10 domains)";
    assert_eq!(output.extra["summary"], json!(summary));
    assert_eq!(
        progress,
        test_support::progress(&["Checking 3 values against MISP's warninglists", summary])
    );
    let requests = sim.requests();
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert_eq!(requests[0].path, "/warninglists/checkValue");
    assert_eq!(
        requests[0].body,
        json!(["8.8.8.8", "evil.example", "www.example.com"])
    );
    assert!(sim.unexpected_requests().is_empty());
}

#[tokio::test]
async fn a_value_on_no_list_is_reported_as_such() {
    let sim = sim_with_lists().await;
    let (result, _) = run(&sim, json!({"misp_values": "[\"evil.example\"]"})).await;
    let output = result.expect("the value is checked");
    assert_eq!(
        output.content,
        json!([]),
        "MISP answers [] when nothing matched"
    );
    assert_eq!(
        output.extra["summary"],
        json!("evil.example is on no MISP warninglist")
    );
    assert_eq!(output.extra["results"][0]["on_warninglist"], json!(false));
}

#[tokio::test]
async fn no_values_is_refused_before_misp_is_called() {
    let sim = sim_with_lists().await;
    let (result, progress) = run(&sim, json!({"misp_values": "  \n"})).await;
    let error = result.expect_err("nothing to check");
    assert_eq!(
        error.to_string(),
        "input 'misp_values' is required but was not given"
    );
    assert!(progress.is_empty());
    assert_eq!(sim.request_count(), 0);
}

#[tokio::test]
async fn misps_refusal_is_an_error_with_its_reason() {
    let sim = sim_with_lists().await;
    sim.fail_next(
        1,
        403,
        Some(json!({"name": "You do not have permission to use this functionality.", "message": "You do not have permission to use this functionality.", "url": "/warninglists/checkValue"})),
    );
    let (result, _) = run(&sim, json!({"misp_values": "8.8.8.8"})).await;
    let error = result.expect_err("MISP refused");
    assert!(
        error
            .to_string()
            .contains("You do not have permission to use this functionality."),
        "{error}"
    );
}
