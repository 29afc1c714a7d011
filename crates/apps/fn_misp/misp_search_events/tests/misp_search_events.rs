//! `misp_search_events` against misp-sim: filters as MISP applies them, pages with MISP's
//! total, `search_limit`, retried searches, and searches refused before MISP is called.

use fn_misp::test_support::{self, ProgressLog};
use misp_search_events::MispSearchEvents;
use misp_sim::{MispSim, SimOptions};
use serde_json::{Value, json};
use soar_core::{Function, FunctionError, FunctionOutput};

async fn run_with(
    sim: &MispSim,
    extra_config: &str,
    inputs: Value,
) -> (Result<FunctionOutput, FunctionError>, Vec<String>) {
    let log = ProgressLog::new();
    let context = test_support::context_from_config(
        &test_support::fn_misp_section(sim.url(), sim.key(), extra_config),
        &log,
    );
    let result = MispSearchEvents
        .run(&context, &test_support::inputs(inputs))
        .await;
    (result, log.messages())
}

async fn run(sim: &MispSim, inputs: Value) -> (Result<FunctionOutput, FunctionError>, Vec<String>) {
    run_with(sim, "", inputs).await
}

fn ids(output: &FunctionOutput) -> Vec<String> {
    output.content["events"]
        .as_array()
        .expect("a list of rows")
        .iter()
        .map(|row| row["id"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// Events 1 to 5 around 198.51.100.7, published 2, 10 and 40 days ago or not at all.
async fn sim_with_events() -> MispSim {
    let sim = MispSim::start(SimOptions::default()).await;
    let now = chrono::Utc::now().timestamp();
    let days_ago = |days: i64| (now - days * 86_400).to_string();
    sim.seed_event(
        json!({"id": "1", "info": "Phishing wave", "date": "2024-03-01",
        "threat_level_id": "1", "published": true, "publish_timestamp": days_ago(2),
        "Tag": [{"name": "tlp:amber"}, {"name": "apt"}],
        "Attribute": [{"type": "ip-dst", "value": "198.51.100.7", "to_ids": true},
                      {"type": "domain", "value": "evil.example"}]}),
    );
    sim.seed_event(json!({"id": "2", "info": "Scan", "date": "2024-03-15",
        "threat_level_id": "3", "published": true, "publish_timestamp": days_ago(10),
        "Orgc": {"id": "7", "name": "CIRCL", "uuid": "55f6ea5e-2c60-40e5-964f-47a8950d210f"},
        "orgc_id": "7", "Tag": [{"name": "tlp:white"}],
        "Attribute": [{"type": "ip-src", "value": "198.51.100.7", "to_ids": false}]}));
    sim.seed_event(
        json!({"id": "3", "info": "Old report", "date": "2023-11-02",
        "threat_level_id": "2", "published": true, "publish_timestamp": days_ago(40),
        "Tag": [{"name": "tlp:amber"}],
        "Object": [{"name": "file", "Attribute": [{"type": "md5",
            "value": "0123456789abcdef0123456789abcdef", "object_relation": "md5",
            "Tag": [{"name": "apt"}]}]}]}),
    );
    sim.seed_event(json!({"id": "4", "info": "Draft", "date": "2024-04-01",
        "threat_level_id": "4", "published": false,
        "Attribute": [{"type": "ip-dst", "value": "198.51.100.7"}]}));
    sim.seed_event(
        json!({"id": "5", "info": "False alarm", "date": "2024-04-02",
        "threat_level_id": "4", "published": true, "publish_timestamp": days_ago(1),
        "Tag": [{"name": "false-positive"}],
        "Attribute": [{"type": "ip-dst", "value": "198.51.100.7"}]}),
    );
    sim
}

#[test]
fn the_function_is_registered_with_its_filters() {
    let registry = soar_core::Registry::from_inventory().expect("no two functions share a name");
    let function = registry
        .get("misp_search_events")
        .expect("register_function! put it in the registry");
    assert_eq!(function.definition(), &misp_search_events::DEFINITION);
    let inputs = misp_search_events::DEFINITION.inputs;
    assert_eq!(inputs.len(), 14);
    assert_eq!(inputs[1], fn_misp::MISP_ATTRIBUTE_TYPE);
    assert_eq!(inputs[2], fn_misp::MISP_CATEGORY);
    assert_eq!(inputs[6].input_type.soar_name(), "datepicker");
}

#[tokio::test]
async fn a_value_published_in_the_last_30_days_gives_compact_rows() {
    let sim = sim_with_events().await;
    let (result, progress) = run(
        &sim,
        json!({"misp_attribute_value": "198.51.100.7", "misp_last": "30d"}),
    )
    .await;
    let output = result.expect("the search runs");
    assert!(output.success);
    assert_eq!(ids(&output), vec!["1", "2", "5"]);
    assert_eq!(output.content["total"], json!(3));
    assert_eq!(output.content["page"], json!(1));
    assert_eq!(output.content["limit"], json!(100));
    let first = &output.content["events"][0];
    assert_eq!(first["info"], json!("Phishing wave"));
    assert_eq!(first["threat_level"], json!("High"));
    assert_eq!(first["threat_level_id"], json!("1"));
    assert_eq!(first["published"], json!(true));
    assert_eq!(first["org"], json!(misp_sim::ORG_NAME));
    assert_eq!(first["orgc"], json!(misp_sim::ORG_NAME));
    assert_eq!(first["tags"], json!(["tlp:amber", "apt"]));
    assert_eq!(first["attribute_count"], json!(2));
    assert_eq!(first["date"], json!("2024-03-01"));
    assert_eq!(output.content["events"][1]["orgc"], json!("CIRCL"));
    assert_eq!(
        progress,
        test_support::progress(&[
            "Searching MISP events (value=198.51.100.7, last=30d), page 1 of up to 100 events",
            "Found 3 matching events, 3 on this page",
        ])
    );
    let requests = sim.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].path, "/events/restSearch");
    assert_eq!(
        requests[0].body,
        json!({"returnFormat": "json", "metadata": true, "limit": 100, "page": 1,
               "value": "198.51.100.7", "last": "30d"})
    );
    assert!(sim.unexpected_requests().is_empty());
}

#[tokio::test]
async fn each_filter_narrows_the_search_as_misp_does() {
    let sim = sim_with_events().await;
    let cases = [
        (json!({"misp_tags_all": "tlp:amber, apt"}), vec!["1", "3"]),
        (
            json!({"misp_attribute_value": "198.51.100.7", "misp_tags_none": "false-positive"}),
            vec!["1", "2", "4"],
        ),
        (json!({"misp_org": "CIRCL"}), vec!["2"]),
        (json!({"misp_org": "7"}), vec!["2"]),
        (json!({"misp_org": "Nobody"}), vec![]),
        (json!({"misp_attribute_type": "md5"}), vec!["3"]),
        (
            json!({"misp_category": {"id": 5008, "name": "Network activity"}}),
            vec!["1", "2", "4", "5"],
        ),
        (
            json!({"misp_date_from": 1_709_251_200_000i64, "misp_date_to": 1_711_929_600_000i64}),
            vec!["1", "2", "4"],
        ),
        (
            json!({"misp_search_published": {"id": 5303, "name": "No"}}),
            vec!["4"],
        ),
        (
            json!({"misp_attribute_value": "198.51.100.7", "misp_search_to_ids": {"id": 5306, "name": "No"}}),
            vec!["2"],
        ),
        (
            json!({"misp_search_threat_level": {"id": 5310, "name": "Undefined"}}),
            vec!["4", "5"],
        ),
        (json!({"misp_attribute_value": "nothing.example"}), vec![]),
    ];
    for (inputs, expected) in cases {
        let (result, _) = run(&sim, inputs.clone()).await;
        let output = result.unwrap_or_else(|error| panic!("{inputs}: {error}"));
        assert!(output.success, "an empty page is still a search: {inputs}");
        assert_eq!(ids(&output), expected, "{inputs}");
        assert_eq!(output.content["total"], json!(expected.len()), "{inputs}");
    }
    assert!(sim.unexpected_requests().is_empty());
}

#[tokio::test]
async fn pages_carry_misps_total_and_the_limit_is_bounded_by_search_limit() {
    let sim = sim_with_events().await;
    let (result, progress) = run_with(
        &sim,
        "search_limit=3",
        json!({"misp_attribute_value": "198.51.100.7", "misp_page": 2}),
    )
    .await;
    let output = result.expect("page 2");
    assert_eq!(ids(&output), vec!["5"]);
    assert_eq!(
        output.content["total"],
        json!(4),
        "every match, from X-Result-Count"
    );
    assert_eq!(output.content["limit"], json!(3));
    assert_eq!(output.content["page"], json!(2));
    assert_eq!(
        progress.last().map(String::as_str),
        Some("Found 4 matching events, 1 on this page")
    );
    assert_eq!(sim.requests()[0].body["limit"], json!(3));

    let (result, _) = run_with(
        &sim,
        "search_limit=3",
        json!({"misp_attribute_value": "198.51.100.7", "misp_limit": 2}),
    )
    .await;
    assert_eq!(ids(&result.expect("a smaller page")), vec!["1", "2"]);

    sim.clear_requests();
    let (result, _) = run_with(
        &sim,
        "search_limit=3",
        json!({"misp_attribute_value": "198.51.100.7", "misp_limit": 4}),
    )
    .await;
    assert_eq!(
        result.expect_err("4 is over search_limit").to_string(),
        "input 'misp_limit' is 4, more than search_limit (3) in [fn_misp]"
    );
    assert_eq!(sim.request_count(), 0);
}

#[tokio::test]
async fn a_search_is_retried_after_a_gateway_error() {
    let sim = sim_with_events().await;
    sim.fail_next(1, 503, None);
    let (result, _) = run_with(&sim, "retries=1", json!({"misp_org": "CIRCL"})).await;
    assert_eq!(ids(&result.expect("the retry answers")), vec!["2"]);
    assert_eq!(sim.request_count(), 2);
}

#[tokio::test]
async fn a_search_without_a_filter_is_refused_before_misp_is_called() {
    let sim = sim_with_events().await;
    let (result, progress) = run(
        &sim,
        json!({"misp_limit": 10, "misp_search_published": {"id": 5301, "name": "Any"}}),
    )
    .await;
    let error = result.expect_err("no filter");
    assert!(matches!(error, FunctionError::Integration(_)), "{error:?}");
    let message = error.to_string();
    for field in [
        "misp_attribute_value",
        "misp_tags_all",
        "misp_last",
        "misp_search_threat_level",
    ] {
        assert!(message.contains(field), "{message} names {field}");
    }
    assert!(progress.is_empty(), "{progress:?}");
    let (result, _) = run(&sim, json!({"misp_last": "a week"})).await;
    assert!(
        result
            .expect_err("not MISP's form")
            .to_string()
            .starts_with("input 'misp_last' is \"a week\"")
    );
    assert_eq!(sim.request_count(), 0);
}
