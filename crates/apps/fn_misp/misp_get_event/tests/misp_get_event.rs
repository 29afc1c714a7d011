//! `misp_get_event` against misp-sim: a real captured event, a big event capped, unknown
//! events by id and UUID, a retried read, and inputs refused before MISP is called.

use fn_misp::test_support::{self, ProgressLog};
use misp_get_event::MispGetEvent;
use misp_sim::{MispSim, SimOptions};
use serde_json::{Value, json};
use soar_core::{Function, FunctionError, FunctionOutput};

const FULL_EVENT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../../tests/fixtures/misp/captured/event_full_with_objects_tags.pymisp-fixture.json"
);

fn captured_event() -> Value {
    let text = std::fs::read_to_string(FULL_EVENT).expect("the captured event is readable");
    serde_json::from_str(&text).expect("the captured event is JSON")
}

async fn run(sim: &MispSim, inputs: Value) -> (Result<FunctionOutput, FunctionError>, Vec<String>) {
    let log = ProgressLog::new();
    let context = test_support::context(sim.url(), sim.key(), &log);
    let result = MispGetEvent
        .run(&context, &test_support::inputs(inputs))
        .await;
    (result, log.messages())
}

fn attribute_count(content: &Value) -> usize {
    let event = &content["Event"];
    let own = event["Attribute"].as_array().map_or(0, Vec::len);
    let in_objects: usize = event["Object"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|object| object["Attribute"].as_array().map_or(0, Vec::len))
        .sum();
    own + in_objects
}

#[test]
fn the_function_is_registered_with_fields_of_its_own_and_shared_ones() {
    let registry = soar_core::Registry::from_inventory().expect("no two functions share a name");
    let function = registry
        .get("misp_get_event")
        .expect("register_function! put it in the registry");
    assert_eq!(function.definition(), &misp_get_event::DEFINITION);
    let names: Vec<&str> = misp_get_event::DEFINITION
        .inputs
        .iter()
        .map(|input| input.name)
        .collect();
    assert_eq!(
        names,
        vec!["misp_event_id", "misp_event_uuid", "misp_max_attributes"]
    );
    assert_eq!(misp_get_event::DEFINITION.inputs[0], fn_misp::MISP_EVENT_ID);
}

#[tokio::test]
async fn a_captured_event_comes_back_with_techniques_related_events_and_counts() {
    let sim = MispSim::start(SimOptions::default()).await;
    let mut captured = captured_event();
    // The capture names no ATT&CK technique: one on an attribute, one as an event galaxy.
    captured["Attribute"][2]["Tag"] =
        json!([{"name": "misp-galaxy:mitre-attack-pattern=\"Spearphishing Link - T1192\""}]);
    captured["Galaxy"]
        .as_array_mut()
        .expect("galaxies")
        .push(json!({"type": "mitre-attack-pattern", "name": "Attack Pattern", "GalaxyCluster": [
            {"type": "mitre-attack-pattern", "value": "Exploitation for Client Execution - T1203",
             "tag_name": "misp-galaxy:mitre-attack-pattern=\"Exploitation for Client Execution - T1203\""},
        ]}));
    let id = sim.seed_event(captured.clone());
    sim.seed_event(json!({"id": "20", "info": "shares a domain",
        "Orgc": {"id": "5", "name": "CIRCL", "uuid": "55f6ea5e-2c60-40e5-964f-47a8950d210f"},
        "Attribute": [{"type": "domain", "value": "movieultimate.com"}],
        "Tag": [{"name": "misp-galaxy:mitre-attack-pattern=\"Spearphishing Link - T1192\""}]}));
    let (result, progress) = run(
        &sim,
        json!({"misp_event_id": id.parse::<i64>().expect("an id")}),
    )
    .await;
    let output = result.expect("the event is read");
    assert!(output.success);
    let total = captured["Attribute"].as_array().map_or(0, Vec::len)
        + captured["Object"]
            .as_array()
            .expect("objects")
            .iter()
            .map(|object| object["Attribute"].as_array().map_or(0, Vec::len))
            .sum::<usize>();
    assert_eq!(output.extra["total_attributes"], json!(total));
    assert_eq!(output.extra["truncated"], json!(false));
    assert_eq!(attribute_count(&output.content), total);
    assert_eq!(
        output.content["Event"]["info"],
        json!("OSINT - Sednit update: How Fancy Bear Spent the Year")
    );
    let first = &output.content["Event"]["Attribute"][0];
    assert_eq!(
        first["Tag"][0]["name"],
        json!("osint:source-type=\"blog-post\"")
    );
    assert_eq!(first["sighting_counts"]["sightings"], json!(0));
    assert!(first.get("Sighting").is_none());
    assert_eq!(
        output.content["Event"]["Object"][0]["Attribute"][0]["sighting_counts"]["false_positives"],
        json!(0)
    );
    assert_eq!(
        output.extra["attack_techniques"],
        json!([
            {"id": "T1192", "name": "Spearphishing Link"},
            {"id": "T1203", "name": "Exploitation for Client Execution"},
        ])
    );
    let related = output.extra["related_events"]
        .as_array()
        .expect("a list of related events");
    let seeded = captured["RelatedEvent"].as_array().map_or(0, Vec::len);
    assert_eq!(related.len(), seeded + 1, "the seeded ones and event 20");
    let twenty = related
        .iter()
        .find(|event| event["id"] == json!("20"))
        .expect("event 20 shares a value");
    assert_eq!(twenty["orgc"], json!("CIRCL"));
    assert_eq!(twenty["info"], json!("shares a domain"));
    assert_eq!(
        progress,
        test_support::progress(&[
            "Getting MISP event 9747",
            &format!("Got MISP event 9747 with {total} attributes"),
        ])
    );
    let requests = sim.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(
        (requests[0].method.as_str(), requests[0].path.as_str()),
        ("GET", "/events/view/9747")
    );
    assert!(sim.unexpected_requests().is_empty());
}

#[tokio::test]
async fn a_big_event_is_capped_and_says_truncated() {
    let sim = MispSim::start(SimOptions::default()).await;
    let id = sim.seed_big_event("big", 1_200);
    let (result, progress) = run(
        &sim,
        json!({"misp_event_id": id.parse::<i64>().expect("an id")}),
    )
    .await;
    let output = result.expect("the event is read");
    assert_eq!(output.extra["truncated"], json!(true));
    assert_eq!(output.extra["total_attributes"], json!(1_200));
    assert_eq!(attribute_count(&output.content), 1_000);
    let last = &output.content["Event"]["Attribute"][999];
    assert_eq!(last["comment"], json!("attribute 999"));
    assert_eq!(last["sighting_counts"]["sightings"], json!(1));
    assert_eq!(last["sighting_counts"]["last_seen"], json!(1_700_000_000));
    assert_eq!(
        progress.last().map(String::as_str),
        Some(format!("MISP event {id} has 1200 attributes; returning the first 1000").as_str())
    );

    let (result, _) = run(
        &sim,
        json!({"misp_event_id": id.parse::<i64>().expect("an id"), "misp_max_attributes": 1_200}),
    )
    .await;
    let output = result.expect("the event is read");
    assert_eq!(output.extra["truncated"], json!(false));
    assert_eq!(attribute_count(&output.content), 1_200);
}

#[tokio::test]
async fn an_event_is_found_by_uuid_and_a_read_is_retried() {
    let sim = MispSim::start(SimOptions::default()).await;
    let id = sim.seed_event(
        json!({"info": "by uuid", "Attribute": [{"type": "domain", "value": "a.example"}]}),
    );
    let uuid = sim.events()[0]["Event"]["uuid"]
        .as_str()
        .expect("a uuid")
        .to_string();
    sim.fail_next(1, 503, None);
    let log = ProgressLog::new();
    let context = test_support::context_from_config(
        &test_support::fn_misp_section(sim.url(), sim.key(), "retries=1"),
        &log,
    );
    let output = MispGetEvent
        .run(
            &context,
            &test_support::inputs(json!({"misp_event_uuid": uuid})),
        )
        .await
        .expect("the retry reads the event");
    assert_eq!(output.content["Event"]["id"], json!(id));
    let paths: Vec<String> = sim
        .requests()
        .into_iter()
        .map(|request| request.path)
        .collect();
    assert_eq!(paths, vec![format!("/events/view/{uuid}"); 2]);
}

#[tokio::test]
async fn unknown_events_are_errors_naming_the_id_or_uuid() {
    let sim = MispSim::start(SimOptions::default()).await;
    let (result, progress) = run(&sim, json!({"misp_event_id": 404})).await;
    assert_eq!(
        result.expect_err("no event 404").to_string(),
        "MISP has no event with ID 404, or the API key's user cannot see it"
    );
    assert_eq!(
        progress,
        test_support::progress(&["Getting MISP event 404"])
    );
    let uuid = "5a3c2fcd-8328-42bb-a95e-4f4402de0b81";
    let (result, _) = run(&sim, json!({"misp_event_uuid": uuid})).await;
    assert_eq!(
        result.expect_err("no such uuid").to_string(),
        format!("MISP has no event with UUID {uuid}, or the API key's user cannot see it")
    );
    assert!(sim.unexpected_requests().is_empty());
}

#[tokio::test]
async fn bad_inputs_are_refused_before_misp_is_called() {
    let sim = MispSim::start(SimOptions::default()).await;
    for (inputs, expected) in [
        (
            json!({}),
            "input 'misp_event_id' or 'misp_event_uuid' is required but was not given",
        ),
        (
            json!({"misp_event_uuid": "not-a-uuid"}),
            "input 'misp_event_uuid' is not-a-uuid, is not a UUID",
        ),
        (
            json!({"misp_event_id": 0}),
            "input 'misp_event_id' is 0, must be a MISP event ID (1 or more)",
        ),
        (
            json!({"misp_event_id": 5, "misp_max_attributes": 0}),
            "input 'misp_max_attributes' is 0, must be from 1 to 100000 (how many attributes to return)",
        ),
    ] {
        let (result, progress) = run(&sim, inputs.clone()).await;
        assert_eq!(
            result.expect_err("refused").to_string(),
            expected,
            "{inputs}"
        );
        assert!(progress.is_empty(), "{progress:?}");
    }
    assert_eq!(sim.request_count(), 0);
}
