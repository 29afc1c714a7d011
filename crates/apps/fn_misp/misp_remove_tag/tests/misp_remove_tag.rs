//! `misp_remove_tag` against misp-sim: from events and attributes named each way, a tag that
//! is not attached or does not exist, MISP's refusals, and a lost answer.

use fn_misp::test_support::{self, ProgressLog};
use misp_remove_tag::MispRemoveTag;
use misp_sim::{MispSim, RecordedRequest, RolePermissions, SimOptions};
use serde_json::{Value, json};
use soar_core::{Function, FunctionError, FunctionOutput};

#[test]
fn the_function_is_registered_with_the_shared_fields() {
    let registry = soar_core::Registry::from_inventory().expect("no two functions share a name");
    let function = registry
        .get("misp_remove_tag")
        .expect("register_function! put it in the registry");
    let definition = function.definition();
    assert_eq!(definition, &misp_remove_tag::DEFINITION);
    let names: Vec<&str> = definition.inputs.iter().map(|input| input.name).collect();
    assert_eq!(
        names,
        [
            "misp_tag_type",
            "misp_tag_name",
            "misp_event_id",
            "misp_event_uuid",
            "misp_attribute_id",
            "misp_attribute_uuid",
            "misp_attribute_value",
        ]
    );
    assert_eq!(definition.inputs[0], fn_misp::MISP_TAG_TYPE);
}

/// Runs the function with one retry allowed, as a lost answer needs.
async fn run(sim: &MispSim, inputs: Value) -> (Result<FunctionOutput, FunctionError>, Vec<String>) {
    let log = ProgressLog::new();
    let config = format!(
        "[fn_misp]\nmisp_url={}\nmisp_key={}\nverify_cert=false\nretries=1\ntimeout=10\n",
        sim.url(),
        sim.key()
    );
    let context = test_support::context_from_config(&config, &log);
    let result = MispRemoveTag
        .run(&context, &test_support::inputs(inputs))
        .await;
    (result, log.messages())
}

fn removals(sim: &MispSim) -> Vec<RecordedRequest> {
    sim.requests()
        .into_iter()
        .filter(|request| request.path == "/tags/removeTagFromObject")
        .collect()
}

/// Event 12 tagged `tlp:amber`, its attribute 203.0.113.9 tagged `malicious`, and a tag
/// `tlp:white` that MISP knows but nothing carries. Returns the event's and the attribute's
/// UUIDs.
async fn tagged_sim() -> (MispSim, String, String) {
    let sim = MispSim::start(SimOptions::default()).await;
    sim.seed_event(
        json!({"id": "12", "info": "phishing", "Tag": [{"name": "tlp:amber"}],
        "Attribute": [{"type": "ip-dst", "value": "203.0.113.9", "Tag": [{"name": "malicious"}]}]}),
    );
    sim.seed_tag("tlp:white");
    let event = &sim.events()[0]["Event"];
    let uuid = |value: &Value| value.as_str().expect("a uuid").to_string();
    let (event_uuid, attribute_uuid) = (uuid(&event["uuid"]), uuid(&event["Attribute"][0]["uuid"]));
    (sim, event_uuid, attribute_uuid)
}

fn event_inputs(tag: &str, event: Value) -> Value {
    let mut inputs = json!({"misp_tag_type": {"id": 3963, "name": "Event"}, "misp_tag_name": tag});
    for (key, value) in event.as_object().expect("an object") {
        inputs[key] = value.clone();
    }
    inputs
}

fn attribute_inputs(tag: &str, attribute: Value) -> Value {
    let mut inputs =
        json!({"misp_tag_type": {"id": 3964, "name": "Attribute"}, "misp_tag_name": tag});
    for (key, value) in attribute.as_object().expect("an object") {
        inputs[key] = value.clone();
    }
    inputs
}

#[tokio::test]
async fn a_tag_is_removed_from_an_event_named_by_id() {
    let (sim, event_uuid, _) = tagged_sim().await;
    let (result, progress) = run(
        &sim,
        event_inputs("tlp:amber", json!({"misp_event_id": 12})),
    )
    .await;
    let output = result.expect("the tag is removed");
    assert!(output.success);
    assert_eq!(output.extra["removed"], json!(true));
    assert_eq!(
        output.extra["target"],
        json!({"type": "Event", "uuid": event_uuid})
    );
    assert_eq!(output.content["saved"], json!(true));
    assert!(
        output.content["message"]
            .as_str()
            .is_some_and(|message| message.starts_with("Global tag tlp:amber")),
        "{}",
        output.content
    );
    assert_eq!(
        progress,
        test_support::progress(&[
            "Removing tag tlp:amber from event 12",
            &format!("Tag tlp:amber removed from Event {event_uuid}"),
        ])
    );
    assert_eq!(sim.tags_of(&event_uuid), Some(vec![]));
    let removals = removals(&sim);
    assert_eq!(removals.len(), 1);
    assert_eq!(
        removals[0].body,
        json!({"uuid": event_uuid, "tag": "tlp:amber"})
    );
    assert!(sim.unexpected_requests().is_empty());
}

#[tokio::test]
async fn a_tag_is_removed_from_an_attribute_named_by_value_or_uuid() {
    let (sim, _, attribute_uuid) = tagged_sim().await;
    let (result, _) = run(
        &sim,
        attribute_inputs(
            "MALICIOUS",
            json!({"misp_event_id": 12, "misp_attribute_value": "203.0.113.9"}),
        ),
    )
    .await;
    let output = result.expect("the tag is removed");
    assert_eq!(output.extra["removed"], json!(true));
    assert_eq!(
        output.extra["target"],
        json!({"type": "Attribute", "uuid": attribute_uuid})
    );
    assert_eq!(sim.tags_of(&attribute_uuid), Some(vec![]));

    // By id the attribute is looked up first; the tag is gone by now.
    let attribute_id = sim.events()[0]["Event"]["Attribute"][0]["id"].clone();
    let (result, _) = run(
        &sim,
        attribute_inputs("malicious", json!({"misp_attribute_id": attribute_id.as_str().and_then(|id| id.parse::<i64>().ok())})),
    )
    .await;
    let output = result.expect("a tag not attached is a success");
    assert_eq!(output.extra["removed"], json!(false));
    assert_eq!(
        output.extra["target"],
        json!({"type": "Attribute", "uuid": attribute_uuid})
    );
    let (result, _) = run(
        &sim,
        attribute_inputs("malicious", json!({"misp_attribute_id": 999})),
    )
    .await;
    assert_eq!(
        result.expect_err("no attribute 999").to_string(),
        "MISP has no attribute 999, or the API key's user cannot see it"
    );

    // By UUID the tag goes straight to MISP, which says the tag is no longer there.
    sim.clear_requests();
    let (result, progress) = run(
        &sim,
        attribute_inputs("malicious", json!({"misp_attribute_uuid": attribute_uuid})),
    )
    .await;
    let output = result.expect("a tag not attached is a success");
    assert_eq!(output.extra["removed"], json!(false));
    assert_eq!(
        output.content["message"],
        json!("Could not remove tag as it is not attached to the target Attribute")
    );
    assert_eq!(
        progress.last().cloned(),
        Some(format!(
            "Tag malicious is not attached to Attribute {attribute_uuid}; nothing to remove"
        ))
    );
    assert_eq!(sim.request_count(), 1, "no lookup for a UUID");
}

#[tokio::test]
async fn a_tag_that_is_not_attached_is_a_success_with_removed_false() {
    let (sim, event_uuid, _) = tagged_sim().await;
    let (result, _) = run(
        &sim,
        event_inputs("tlp:white", json!({"misp_event_uuid": event_uuid})),
    )
    .await;
    let output = result.expect("not attached is a success");
    assert!(output.success);
    assert_eq!(output.extra["removed"], json!(false));
    assert_eq!(
        output.extra["message"],
        json!(format!(
            "Tag tlp:white is not attached to Event {event_uuid}; nothing to remove"
        ))
    );
    assert_eq!(
        sim.tags_of(&event_uuid),
        Some(vec!["tlp:amber".to_string()])
    );
}

#[tokio::test]
async fn a_tag_misp_does_not_have_is_a_success_that_says_so() {
    let (sim, event_uuid, _) = tagged_sim().await;
    let (result, progress) = run(
        &sim,
        event_inputs("no-such-tag", json!({"misp_event_id": 12})),
    )
    .await;
    let output = result.expect("an unknown tag is a success");
    assert_eq!(output.extra["removed"], json!(false));
    assert_eq!(output.content["message"], json!("Invalid Tag."));
    assert_eq!(
        progress.last().cloned(),
        Some(format!(
            "MISP has no tag named no-such-tag; nothing to remove from Event {event_uuid}"
        ))
    );
}

#[tokio::test]
async fn unknown_objects_are_errors_naming_the_input() {
    let (sim, _, _) = tagged_sim().await;
    let unknown = "8c3b5c0e-0000-4000-8000-000000000000";
    let (result, _) = run(
        &sim,
        event_inputs("tlp:amber", json!({"misp_event_uuid": unknown})),
    )
    .await;
    assert_eq!(
        result.expect_err("no such event").to_string(),
        format!(
            "MISP has no event or attribute with UUID {unknown} (from input 'misp_event_uuid'), or the API key's user cannot see it"
        )
    );
    let (result, _) = run(
        &sim,
        event_inputs("tlp:amber", json!({"misp_event_id": 999})),
    )
    .await;
    assert_eq!(
        result.expect_err("no event 999").to_string(),
        "MISP has no event with ID 999, or the API key's user cannot see it"
    );
    let (result, _) = run(
        &sim,
        attribute_inputs(
            "malicious",
            json!({"misp_event_id": 12, "misp_attribute_value": "198.51.100.1"}),
        ),
    )
    .await;
    assert_eq!(
        result.expect_err("no such value").to_string(),
        "MISP has no attribute with value 198.51.100.1 in event 12, or the API key's user cannot see it"
    );
}

#[tokio::test]
async fn a_role_without_the_tagger_flag_gets_misps_reason() {
    let (sim, event_uuid, _) = tagged_sim().await;
    sim.set_permissions(RolePermissions {
        tagger: false,
        ..RolePermissions::all()
    });
    let (result, _) = run(
        &sim,
        event_inputs("tlp:amber", json!({"misp_event_uuid": event_uuid})),
    )
    .await;
    let error = result.expect_err("no perm_tagger");
    assert!(
        error
            .to_string()
            .ends_with("(HTTP 403): You do not have permission to use this functionality."),
        "{error}"
    );
    assert_eq!(
        sim.tags_of(&event_uuid),
        Some(vec!["tlp:amber".to_string()])
    );
}

#[tokio::test]
async fn bad_inputs_are_refused_before_misp_is_called() {
    let (sim, _, _) = tagged_sim().await;
    let (result, _) = run(
        &sim,
        event_inputs("tlp:amber", json!({"misp_event_uuid": "12"})),
    )
    .await;
    assert_eq!(
        result.expect_err("not a uuid").to_string(),
        "input 'misp_event_uuid' is 12, is not a UUID"
    );
    assert_eq!(sim.request_count(), 0);
}

/// MISP removes the tag and the answer is lost: the check finds the tag gone and the
/// function succeeds without a second removal.
#[tokio::test]
async fn a_lost_answer_is_checked_and_not_applied_twice() {
    let (sim, event_uuid, _) = tagged_sim().await;
    sim.lose_next_answers(1);
    let (result, progress) = run(
        &sim,
        event_inputs("tlp:amber", json!({"misp_event_uuid": event_uuid})),
    )
    .await;
    let output = result.expect("the check finds the tag gone");
    assert_eq!(output.extra["removed"], json!(true));
    assert_eq!(output.content, Value::Null, "MISP's answer never came");
    assert_eq!(
        progress.last().cloned(),
        Some(format!("Tag tlp:amber removed from Event {event_uuid}"))
    );
    assert_eq!(removals(&sim).len(), 1, "{:?}", sim.requests());
    let check = sim.requests().pop().expect("the check");
    assert_eq!(check.path, "/events/restSearch");
    assert_eq!(sim.tags_of(&event_uuid), Some(vec![]));
}

/// A 503 before MISP acted: the tag is still there, so the removal is sent again.
#[tokio::test]
async fn a_removal_that_did_not_happen_is_sent_again() {
    let (sim, _, attribute_uuid) = tagged_sim().await;
    sim.fail_next(1, 503, None);
    let (result, _) = run(
        &sim,
        attribute_inputs("malicious", json!({"misp_attribute_uuid": attribute_uuid})),
    )
    .await;
    let output = result.expect("the second removal succeeds");
    assert_eq!(output.extra["removed"], json!(true));
    assert_eq!(output.content["saved"], json!(true));
    let statuses: Vec<Option<u16>> = removals(&sim)
        .iter()
        .map(|request| request.status)
        .collect();
    assert_eq!(statuses, [Some(503), Some(200)]);
    assert!(
        sim.requests()
            .iter()
            .any(|request| request.path == "/attributes/restSearch"),
        "the check read the attribute"
    );
}
