//! `misp_add_attributes` against misp-sim: a pasted, defanged batch with values already in
//! the event, on a warninglist and invalid; warninglisted values added when asked; a repeat
//! that adds nothing; MISP refusing every attribute; an unknown event; and a lost answer.

use std::time::Duration;

use fn_misp::test_support::{self};
use misp_add_attributes::MispAddAttributes;
use misp_add_attributes::plan::attribute_uuid;
use misp_sim::{MispSim, RecordedRequest, SimOptions};
use serde_json::{Value, json};
use soar_core::{FunctionError, FunctionOutput, InputType};
use uuid::Uuid;

#[test]
fn the_function_is_registered_with_its_inputs() {
    let registry = soar_core::Registry::from_inventory().expect("no two functions share a name");
    let function = registry
        .get("misp_add_attributes")
        .expect("register_function! put it in the registry");
    let definition = function.definition();
    assert_eq!(definition, &misp_add_attributes::DEFINITION);
    let inputs: Vec<(&str, InputType)> = definition
        .inputs
        .iter()
        .map(|input| (input.name, input.input_type))
        .collect();
    assert_eq!(
        inputs,
        [
            ("misp_event_id", InputType::Number),
            ("misp_event_uuid", InputType::Text),
            ("misp_values", InputType::Textarea),
            ("misp_to_ids", InputType::Boolean),
            ("misp_comment", InputType::Text),
            ("misp_category", InputType::Select),
            ("misp_add_warninglisted", InputType::Boolean),
        ]
    );
}

const REPORT: &str = "# IOCs from the report\n1.2.3[.]4\n8.8.8.8\nhxxp://evil[.]example/dl\nnot a value\nevil[.]example\nd41d8cd98f00b204e9800998ecf8427e\n";

/// Event 12 holding ip-dst 1.2.3.4, and a warninglist with 8.8.8.8.
async fn sim_with_event() -> MispSim {
    let sim = MispSim::start(SimOptions::default()).await;
    sim.seed_event(json!({"id": "12", "info": "phishing wave", "Attribute": [
        {"id": "40", "type": "ip-dst", "category": "Network activity", "value": "1.2.3.4", "to_ids": true},
    ]}));
    sim.seed_warninglist(json!({
        "id": "3", "name": "List of known IPv4 public DNS resolvers", "type": "cidr",
        "category": "false_positive", "list": ["8.8.8.8/32"],
        "matching_attributes": ["ip-src", "ip-dst"],
    }));
    sim
}

/// Runs the function with one retry allowed, as a lost answer needs.
async fn run(sim: &MispSim, inputs: Value) -> (Result<FunctionOutput, FunctionError>, Vec<String>) {
    test_support::run_function(&MispAddAttributes, sim.url(), sim.key(), 1, inputs).await
}

fn event(sim: &MispSim, event_id: &str) -> Value {
    sim.events()
        .into_iter()
        .map(|event| event["Event"].clone())
        .find(|event| event["id"] == event_id)
        .unwrap_or_else(|| panic!("event {event_id} was seeded"))
}

fn adds(sim: &MispSim) -> Vec<RecordedRequest> {
    sim.requests()
        .into_iter()
        .filter(|request| request.path.starts_with("/attributes/add"))
        .collect()
}

fn outcomes(output: &FunctionOutput) -> Vec<(String, String)> {
    output.extra["results"]
        .as_array()
        .expect("results is a list")
        .iter()
        .map(|result| {
            (
                result["value"].as_str().unwrap_or_default().to_string(),
                result["outcome"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
    expected
        .iter()
        .map(|(value, outcome)| (value.to_string(), outcome.to_string()))
        .collect()
}

#[tokio::test]
async fn a_pasted_batch_is_added_in_one_call_with_each_values_outcome() {
    let sim = sim_with_event().await;
    let event_uuid = event(&sim, "12")["uuid"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let (result, progress) = run(
        &sim,
        json!({"misp_event_id": 12, "misp_values": REPORT, "misp_to_ids": true,
               "misp_comment": "incident 2095"}),
    )
    .await;
    let output = result.expect("the batch is added");
    assert!(output.success);
    assert_eq!(
        outcomes(&output),
        pairs(&[
            ("1.2.3.4", "already present"),
            ("8.8.8.8", "on warninglist"),
            ("http://evil.example/dl", "created"),
            ("not a value", "invalid"),
            ("evil.example", "created"),
            ("d41d8cd98f00b204e9800998ecf8427e", "created"),
        ])
    );
    let results = &output.extra["results"];
    assert_eq!(results[0]["id"], "40");
    assert_eq!(
        results[1]["warninglists"][0]["name"],
        "List of known IPv4 public DNS resolvers"
    );
    assert_eq!(results[2]["type"], "url");
    assert_eq!(results[4]["type"], "domain");
    assert_eq!(results[5]["type"], "md5");
    assert_eq!(results[5]["type_detected"], true);
    let namespace = Uuid::parse_str(&event_uuid).expect("the event has a UUID");
    assert_eq!(
        results[4]["uuid"],
        json!(attribute_uuid(&namespace, "domain", "evil.example").to_string()),
        "the new attribute's UUID is derived from the event, type and value"
    );
    assert!(
        results[3]["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("could not be told"),
        "{}",
        results[3]
    );
    assert_eq!(
        output.extra["counts"],
        json!({"created": 3, "already present": 1, "on warninglist": 1, "invalid": 1})
    );
    let summary =
        "Event 12: 3 created, 1 already present, 1 on a warninglist (not added), 1 invalid";
    assert_eq!(output.extra["summary"], json!(summary));
    assert_eq!(
        output.content["Attribute"].as_array().map(Vec::len),
        Some(3)
    );
    assert_eq!(
        progress,
        test_support::progress(&[
            "Reading event 12",
            "Checking 5 values against MISP's warninglists and event 12",
            "Adding 3 attributes to event 12",
            summary,
        ])
    );
    let paths: Vec<String> = sim
        .requests()
        .into_iter()
        .map(|request| request.path)
        .collect();
    assert_eq!(
        paths,
        [
            "/events/restSearch",
            "/warninglists/checkValue",
            "/attributes/restSearch",
            "/attributes/add/12",
        ]
    );
    let adds = adds(&sim);
    let sent = adds[0].body.as_array().expect("the add sends a list");
    assert_eq!(sent.len(), 3);
    assert_eq!(
        sent[1],
        json!({"type": "domain", "value": "evil.example", "to_ids": true, "comment": "incident 2095",
               "uuid": attribute_uuid(&namespace, "domain", "evil.example").to_string()})
    );
    let stored = event(&sim, "12");
    let stored = stored["Attribute"]
        .as_array()
        .expect("the event has attributes");
    assert_eq!(stored.len(), 4);
    assert!(sim.unexpected_requests().is_empty());
}

#[tokio::test]
async fn warninglisted_values_are_added_when_asked_and_a_repeat_adds_nothing() {
    let sim = sim_with_event().await;
    let uuid = event(&sim, "12")["uuid"].clone();
    let inputs = json!({"misp_event_uuid": uuid, "misp_values": "[\"8.8.8.8\", {\"value\": \"Hello there\", \"type\": \"text\"}]",
                        "misp_add_warninglisted": true, "misp_category": {"id": 5011, "name": "External analysis"}});
    let (result, _) = run(&sim, inputs.clone()).await;
    let output = result.expect("the batch is added");
    assert_eq!(
        outcomes(&output),
        pairs(&[("8.8.8.8", "created"), ("Hello there", "created")])
    );
    assert_eq!(
        output.extra["results"][0]["warninglists"][0]["id"], "3",
        "the list is still reported"
    );
    assert_eq!(adds(&sim)[0].body[1]["category"], "External analysis");

    sim.clear_requests();
    let (again, progress) = run(&sim, inputs).await;
    let again = again.expect("the repeat succeeds");
    assert_eq!(
        outcomes(&again),
        pairs(&[
            ("8.8.8.8", "already present"),
            ("Hello there", "already present")
        ])
    );
    assert!(adds(&sim).is_empty(), "nothing is sent again");
    assert_eq!(
        progress.last().map(String::as_str),
        Some("Event 12: 0 created, 2 already present, 0 on a warninglist (not added), 0 invalid")
    );
}

#[tokio::test]
async fn attributes_misp_refuses_are_invalid_with_its_reasons_and_others_are_added() {
    let sim = sim_with_event().await;
    // "Person" does not allow ip-dst; text is allowed.
    let (result, _) = run(
        &sim,
        json!({"misp_event_id": 12, "misp_values": "[{\"value\": \"5.6.7.8\", \"type\": \"ip-dst\"}, {\"value\": \"Alice\", \"type\": \"text\"}]",
               "misp_category": "Person"}),
    )
    .await;
    let output = result.expect("one bad item does not fail the others");
    assert_eq!(
        outcomes(&output),
        pairs(&[("5.6.7.8", "invalid"), ("Alice", "created")])
    );
    assert!(
        output.extra["results"][0]["reason"]
            .as_str()
            .unwrap_or_default()
            .starts_with("type: "),
        "{}",
        output.extra["results"][0]
    );

    // Every attribute refused: MISP's saveFail, still a result per item.
    let (result, _) = run(
        &sim,
        json!({"misp_event_id": 12, "misp_values": "[{\"value\": \"5.6.7.9\", \"type\": \"ip-dst\"}]",
               "misp_category": "Person"}),
    )
    .await;
    let output = result.expect("a refused batch is a result");
    assert_eq!(outcomes(&output), pairs(&[("5.6.7.9", "invalid")]));
    assert_eq!(output.content["saved"], json!(false));
}

#[tokio::test]
async fn an_unknown_event_or_no_values_is_an_error_before_anything_is_added() {
    let sim = sim_with_event().await;
    let (result, _) = run(&sim, json!({"misp_event_id": 99, "misp_values": "1.2.3.4"})).await;
    assert_eq!(
        result.expect_err("no event 99").to_string(),
        "MISP has no event with ID 99, or the API key's user cannot see it"
    );
    let (result, progress) = run(
        &sim,
        json!({"misp_event_id": 12, "misp_values": "\n# none\n"}),
    )
    .await;
    assert_eq!(
        result.expect_err("no values").to_string(),
        "input 'misp_values' is required but was not given"
    );
    assert!(progress.is_empty());
    assert!(adds(&sim).is_empty());
}

#[tokio::test]
async fn only_invalid_values_need_no_misp_lookups() {
    let sim = sim_with_event().await;
    let (result, _) = run(
        &sim,
        json!({"misp_event_id": 12, "misp_values": "not a value"}),
    )
    .await;
    let output = result.expect("a result naming the problem");
    assert_eq!(outcomes(&output), pairs(&[("not a value", "invalid")]));
    let paths: Vec<String> = sim
        .requests()
        .into_iter()
        .map(|request| request.path)
        .collect();
    assert_eq!(paths, ["/events/restSearch"]);
}

/// MISP adds the batch and the answer is lost: the check finds the attributes by their
/// UUIDs and the batch is not sent again.
#[tokio::test]
async fn a_lost_answer_is_checked_and_the_batch_not_sent_twice() {
    let sim = sim_with_event().await;
    sim.set_latency(Duration::from_millis(300));
    let watcher = async {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while sim.request_count() < 3 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        sim.lose_next_answers(1);
        sim.set_latency(Duration::ZERO);
    };
    let inputs = json!({"misp_event_id": 12, "misp_values": "evil.example\n5.6.7.8\n"});
    let ((result, _), ()) = tokio::join!(run(&sim, inputs), watcher);
    let output = result.expect("the check finds the added attributes");
    assert_eq!(
        outcomes(&output),
        pairs(&[("evil.example", "created"), ("5.6.7.8", "created")])
    );
    assert_eq!(adds(&sim).len(), 1, "one add, not two");
    let check = sim.requests().pop().expect("the check");
    assert_eq!(check.path, "/attributes/restSearch");
    assert_eq!(check.body["uuid"].as_array().map(Vec::len), Some(2));
    let stored = event(&sim, "12");
    assert_eq!(stored["Attribute"].as_array().map(Vec::len), Some(3));
}

/// A soft-deleted attribute the search does not show holds the UUID the value would get:
/// MISP refuses the twin, and the item says why while the others are added.
#[tokio::test]
async fn a_value_whose_uuid_misp_holds_is_refused_and_the_others_added() {
    let sim = MispSim::start(SimOptions::default()).await;
    let event_uuid = "5b646415-7b48-40d5-86b4-c0070acd0835";
    let namespace = Uuid::parse_str(event_uuid).expect("a UUID");
    let taken = attribute_uuid(&namespace, "domain", "evil.example").to_string();
    sim.seed_event(
        json!({"id": "12", "uuid": event_uuid, "info": "phishing", "Attribute": [
            {"id": "40", "type": "domain", "category": "Network activity", "value": "evil.example",
             "uuid": taken, "deleted": true},
        ]}),
    );
    let (result, _) = run(
        &sim,
        json!({"misp_event_id": 12, "misp_values": "evil.example\n5.6.7.8"}),
    )
    .await;
    let output = result.expect("one refused item does not fail the other");
    assert_eq!(
        outcomes(&output),
        pairs(&[("evil.example", "invalid"), ("5.6.7.8", "created")])
    );
    let reason = output.extra["results"][0]["reason"]
        .as_str()
        .unwrap_or_default();
    assert!(reason.contains("uuid"), "{reason}");
}
