//! `misp_search_attribute` as SOAR sees it: its definition against the original export, and
//! runs against misp-sim.

use fn_misp::test_support::{self, ProgressLog};
use misp_search_attribute::MispSearchAttribute;
use misp_sim::{ForcedBody, ForcedResponse, MispSim, SimOptions};
use serde_json::{Value, json};
use soar_core::misp::MispError;
use soar_core::{Function, FunctionContext, FunctionError, FunctionOutput};

#[test]
fn definition_matches_the_original_export() {
    test_support::assert_matches_export(&misp_search_attribute::DEFINITION);
}

#[test]
fn the_function_is_registered_under_its_api_name() {
    let registry = soar_core::Registry::from_inventory().expect("no two functions share a name");
    let function = registry
        .get("misp_search_attribute")
        .expect("register_function! put it in the registry");
    assert_eq!(function.definition(), &misp_search_attribute::DEFINITION);
}

async fn run_in(context: &FunctionContext, value: &str) -> Result<FunctionOutput, FunctionError> {
    MispSearchAttribute
        .run(
            context,
            &test_support::inputs(json!({"misp_attribute_value": value})),
        )
        .await
}

async fn run(sim: &MispSim, value: &str) -> (Result<FunctionOutput, FunctionError>, Vec<String>) {
    let log = ProgressLog::new();
    let context = test_support::context(sim.url(), sim.key(), &log);
    let result = run_in(&context, value).await;
    (result, log.messages())
}

const BOOTKIT: &str = r#"misp-galaxy:mitre-attack-pattern="Bootkit - T1067""#;
const POWERSHELL: &str = r#"misp-galaxy:mitre-attack-pattern="Command and Scripting Interpreter: PowerShell - T1059.001""#;
const ACTOR: &str = r#"misp-galaxy:threat-actor="Sofacy""#;
const SOURCE_TYPE: &str = r#"osint:source-type="blog-post""#;

/// Event 10 holds `test` with ATT&CK, TLP, PAP, galaxy, taxonomy and free tags; event 11 holds
/// `test` too, with a tag already seen; event 12 does not hold it.
async fn sim_with_tagged_events() -> MispSim {
    let sim = MispSim::start(SimOptions::default()).await;
    sim.seed_event(json!({
        "id": "10",
        "info": "Test for MISP",
        "Tag": [{"name": "tlp:amber"}, {"name": SOURCE_TYPE}, {"name": ACTOR}],
        "Attribute": [
            {"type": "text", "value": "test", "Tag": [
                {"name": BOOTKIT}, {"name": POWERSHELL}, {"name": "PAP:GREEN"}, {"name": "Phishing"},
            ]},
            {"type": "ip-dst", "value": "1.1.1.1", "Tag": [{"name": "never-returned:tag"}]},
        ],
    }));
    sim.seed_event(json!({
        "id": "11",
        "info": "Second",
        "Tag": [{"name": "tlp:amber"}],
        "Attribute": [{"type": "text", "value": "test", "Tag": [{"name": BOOTKIT}]}],
    }));
    sim.seed_event(
        json!({"id": "12", "info": "Other", "Attribute": [{"type": "text", "value": "other"}]}),
    );
    sim
}

#[tokio::test]
async fn a_match_returns_the_events_with_tags_techniques_and_groups() {
    let sim = sim_with_tagged_events().await;
    let (result, progress) = run(&sim, "test").await;
    let output = result.expect("the search works");
    assert!(output.success);
    let events = output
        .content
        .as_array()
        .expect("content is the list of events");
    let ids: Vec<&Value> = events.iter().map(|event| &event["Event"]["id"]).collect();
    assert_eq!(ids, vec!["10", "11"]);
    assert_eq!(
        events[0]["Event"]["Attribute"].as_array().map(Vec::len),
        Some(1),
        "only the matching attribute comes back"
    );
    assert_eq!(
        output.extra["tags"],
        json!([
            "PAP:GREEN",
            "Phishing",
            BOOTKIT,
            POWERSHELL,
            ACTOR,
            SOURCE_TYPE,
            "tlp:amber",
        ])
    );
    assert_eq!(
        output.extra["attack_techniques"],
        json!([
            {"id": "T1059.001", "name": "Command and Scripting Interpreter: PowerShell"},
            {"id": "T1067", "name": "Bootkit"},
        ])
    );
    assert_eq!(
        output.extra["tag_groups"],
        json!({
            "tlp": ["tlp:amber"],
            "pap": ["PAP:GREEN"],
            "attack": [BOOTKIT, POWERSHELL],
            "galaxies": [ACTOR],
            "taxonomies": [SOURCE_TYPE],
            "other": ["Phishing"],
        })
    );
    assert_eq!(
        progress,
        test_support::progress(&[
            "Searching for attribute - test",
            "Attribute search complete."
        ])
    );
    let search = sim
        .requests()
        .into_iter()
        .find(|request| request.path == "/events/restSearch")
        .expect("events/restSearch was called");
    assert_eq!(
        search.body,
        json!({"value": "test", "limit": 100, "returnFormat": "json"})
    );
    assert!(sim.unexpected_requests().is_empty());
}

#[tokio::test]
async fn the_original_failure_case_is_success_false_with_an_empty_list() {
    let sim = sim_with_tagged_events().await;
    let (result, progress) = run(&sim, "sample text").await;
    let output = result.expect("no match is a result, not an error");
    assert!(!output.success);
    assert_eq!(output.content, json!([]));
    assert_eq!(
        output.reason.as_deref(),
        Some("No attributes matching sample text found")
    );
    assert_eq!(output.extra["tags"], json!([]));
    assert_eq!(output.extra["attack_techniques"], json!([]));
    assert_eq!(
        progress,
        test_support::progress(&[
            "Searching for attribute - sample text",
            "Attribute search complete."
        ])
    );
}

#[tokio::test]
async fn the_configured_search_limit_is_sent() {
    let sim = sim_with_tagged_events().await;
    let log = ProgressLog::new();
    let config = test_support::fn_misp_section(sim.url(), sim.key(), "search_limit=1");
    let context = test_support::context_from_config(&config, &log);
    let output = run_in(&context, "test").await.expect("the search works");
    assert_eq!(output.content.as_array().map(Vec::len), Some(1));
    let search = sim
        .requests()
        .into_iter()
        .find(|request| request.path == "/events/restSearch")
        .expect("events/restSearch was called");
    assert_eq!(search.body["limit"], 1);
}

#[tokio::test]
async fn an_answer_that_is_not_a_list_is_an_error() {
    let sim = sim_with_tagged_events().await;
    sim.force_next(
        1,
        ForcedResponse {
            status: 200,
            headers: Vec::new(),
            body: ForcedBody::Json(json!({"response": {"Attribute": []}})),
        },
    );
    let (result, progress) = run(&sim, "test").await;
    let error = result.expect_err("a dict is not a list of events");
    // The shared client checks the shape before the function sees it, so the original's
    // "Expected a list" text is not reached here; the client's error says the same.
    assert!(
        matches!(
            error,
            FunctionError::Misp(MispError::InvalidResponse { .. })
        ),
        "{error:?}"
    );
    assert!(error.to_string().contains("/events/restSearch"), "{error}");
    assert_eq!(
        progress,
        test_support::progress(&["Searching for attribute - test"])
    );
}
