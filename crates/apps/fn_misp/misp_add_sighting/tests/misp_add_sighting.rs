//! `misp_add_sighting` against misp-sim: sightings by value, id and UUID of each type, MISP's
//! soft error, a role without the sighting flag, and a lost answer.

use fn_misp::test_support::{self};
use misp_add_sighting::MispAddSighting;
use misp_sim::{MispSim, RecordedRequest, RolePermissions, SimOptions};
use serde_json::{Value, json};
use soar_core::{FunctionError, FunctionOutput};

#[test]
fn the_function_is_registered_with_the_shared_fields() {
    let registry = soar_core::Registry::from_inventory().expect("no two functions share a name");
    let function = registry
        .get("misp_add_sighting")
        .expect("register_function! put it in the registry");
    let definition = function.definition();
    assert_eq!(definition, &misp_add_sighting::DEFINITION);
    let names: Vec<&str> = definition.inputs.iter().map(|input| input.name).collect();
    assert_eq!(
        names,
        [
            "misp_sighting",
            "misp_attribute_id",
            "misp_attribute_uuid",
            "misp_sighting_type",
            "misp_sighting_source",
            "misp_sighting_time",
        ]
    );
    assert_eq!(definition.inputs[0], fn_misp::MISP_SIGHTING);
    assert_eq!(
        misp_add_sighting::DEFAULT_SOURCE,
        misp_create_sighting::SIGHTING_SOURCE,
        "the original's source"
    );
}

/// Runs the function with one retry allowed, as a lost answer needs.
async fn run(sim: &MispSim, inputs: Value) -> (Result<FunctionOutput, FunctionError>, Vec<String>) {
    test_support::run_function(&MispAddSighting, sim.url(), sim.key(), 1, inputs).await
}

fn adds(sim: &MispSim) -> Vec<RecordedRequest> {
    sim.requests()
        .into_iter()
        .filter(|request| request.path.starts_with("/sightings/add"))
        .collect()
}

/// Event 12 with attribute 40 (203.0.113.9) and event 13 with attribute 50 (the same value).
/// Returns attribute 40's UUID.
async fn sim_with_attributes() -> (MispSim, String) {
    let sim = MispSim::start(SimOptions::default()).await;
    sim.seed_event(json!({"id": "12", "info": "phishing", "Attribute": [
        {"id": "40", "type": "ip-dst", "value": "203.0.113.9"},
    ]}));
    sim.seed_event(json!({"id": "13", "info": "scan", "Attribute": [
        {"id": "50", "type": "ip-src", "value": "203.0.113.9"},
    ]}));
    let uuid = sim
        .attribute("40")
        .and_then(|attribute| attribute["uuid"].as_str().map(str::to_string))
        .expect("attribute 40 has a uuid");
    (sim, uuid)
}

#[tokio::test]
async fn a_false_positive_of_a_value_lands_on_every_attribute_with_it() {
    let (sim, _) = sim_with_attributes().await;
    let (result, progress) = run(
        &sim,
        json!({"misp_sighting": "203.0.113.9",
               "misp_sighting_type": {"id": 5102, "name": "False positive"},
               "misp_sighting_time": 1_709_288_430_500_i64}),
    )
    .await;
    let output = result.expect("the sighting is added");
    assert!(output.success);
    assert_eq!(output.content["Sighting"]["type"], "1");
    assert_eq!(output.content["Sighting"]["source"], "IBM QRadar SOAR");
    assert_eq!(output.content["Sighting"]["date_sighting"], "1709288430");
    assert_eq!(output.extra["sighting_type"], json!("False positive"));
    assert_eq!(output.extra["source"], json!("IBM QRadar SOAR"));
    assert_eq!(output.extra["timestamp"], json!(1_709_288_430));
    assert_eq!(
        progress,
        test_support::progress(&[
            "Adding a false positive of 203.0.113.9 (source IBM QRadar SOAR)",
            "False positive added",
        ])
    );
    let sent = adds(&sim);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].path, "/sightings/add");
    assert_eq!(
        sent[0].body,
        json!({"value": "203.0.113.9", "type": "1", "source": "IBM QRadar SOAR", "timestamp": "1709288430"})
    );
    let sighted: Vec<Value> = sim
        .sightings()
        .iter()
        .map(|row| row["attribute_id"].clone())
        .collect();
    assert_eq!(sighted, [json!("40"), json!("50")]);
    assert!(sim.unexpected_requests().is_empty());
}

#[tokio::test]
async fn one_attribute_is_sighted_by_id_or_uuid_with_a_source() {
    let (sim, uuid) = sim_with_attributes().await;
    let (result, _) = run(
        &sim,
        json!({"misp_attribute_id": 40, "misp_sighting_source": "EDR"}),
    )
    .await;
    let output = result.expect("sighted by id");
    assert_eq!(output.content["Sighting"]["attribute_id"], "40");
    assert_eq!(output.content["Sighting"]["type"], "0");
    let (result, progress) = run(
        &sim,
        json!({"misp_attribute_uuid": uuid, "misp_sighting_type": "Expiration"}),
    )
    .await;
    assert_eq!(
        result.expect("sighted by uuid").content["Sighting"]["type"],
        "2"
    );
    assert_eq!(
        progress[1],
        format!("Adding an expiration of attribute {uuid} (source IBM QRadar SOAR)")
    );
    let paths: Vec<String> = adds(&sim).into_iter().map(|r| r.path).collect();
    assert_eq!(
        paths,
        [
            "/sightings/add/40".to_string(),
            format!("/sightings/add/{uuid}")
        ]
    );
    assert_eq!(adds(&sim)[0].body["source"], "EDR");
    assert!(adds(&sim)[0].body.get("value").is_none());
    assert_eq!(sim.sightings().len(), 2, "attribute 50 was not sighted");
}

#[tokio::test]
async fn misps_soft_error_is_a_failed_result() {
    let (sim, _) = sim_with_attributes().await;
    let (result, progress) = run(&sim, json!({"misp_sighting": "198.51.100.7"})).await;
    let output = result.expect("a soft error is a result");
    assert!(!output.success);
    let reason =
        "Could not add the Sighting. Reason: No valid attributes found that match the criteria.";
    assert_eq!(output.reason.as_deref(), Some(reason));
    assert_eq!(output.content, json!({"message": reason}));
    assert_eq!(output.extra["sighting_type"], json!("Sighting"));
    assert_eq!(
        progress.last().cloned(),
        Some(format!("MISP did not add the sighting: {reason}"))
    );
    let (result, _) = run(&sim, json!({"misp_attribute_id": 999})).await;
    assert!(!result.expect("a soft error is a result").success);
    assert!(sim.sightings().is_empty());
}

#[tokio::test]
async fn a_role_without_the_sighting_flag_gets_misps_reason() {
    let (sim, _) = sim_with_attributes().await;
    sim.set_permissions(RolePermissions {
        sighting: false,
        ..RolePermissions::all()
    });
    let (result, _) = run(&sim, json!({"misp_sighting": "203.0.113.9"})).await;
    assert_eq!(
        result.expect_err("no perm_sighting").to_string(),
        "MISP refused the sighting (HTTP 403): You do not have permission to use this functionality. (adding sightings needs a role with the sighting permission, perm_sighting)"
    );
}

#[tokio::test]
async fn bad_inputs_are_refused_before_misp_is_called() {
    let (sim, _) = sim_with_attributes().await;
    let (result, progress) = run(&sim, json!({"misp_sighting_type": "Sighting"})).await;
    assert_eq!(
        result.expect_err("nothing to sight").to_string(),
        "input 'misp_sighting' or 'misp_attribute_id' or 'misp_attribute_uuid' is required but was not given"
    );
    assert!(progress.is_empty());
    assert_eq!(sim.request_count(), 0);
}

/// MISP adds the sightings and the answer is lost: the check finds them (same type, source
/// and second) and the function succeeds without adding a second set.
#[tokio::test]
async fn a_lost_answer_is_checked_and_not_sighted_twice() {
    for inputs in [
        json!({"misp_sighting": "203.0.113.9", "misp_sighting_type": "False positive"}),
        json!({"misp_attribute_id": 40, "misp_sighting_source": "EDR"}),
    ] {
        let (sim, _) = sim_with_attributes().await;
        let before = sim.sightings().len();
        sim.lose_next_answers(1);
        let (result, progress) = run(&sim, inputs.clone()).await;
        let output = result.expect("the check finds the sighting");
        assert!(output.success, "{inputs}");
        assert!(
            progress.last().is_some_and(|last| last.ends_with(" added")),
            "{progress:?}"
        );
        assert_eq!(adds(&sim).len(), 1, "{inputs}: {:?}", sim.requests());
        let check = sim.requests().pop().expect("the check");
        assert!(check.path.starts_with("/sightings/restSearch"), "{check:?}");
        let added = sim.sightings().len() - before;
        let expected = if inputs.get("misp_sighting").is_some() {
            2
        } else {
            1
        };
        assert_eq!(
            added, expected,
            "{inputs}: one sighting per attribute, once"
        );
        assert_eq!(
            output.content["Sighting"]["date_sighting"],
            json!(output.extra["timestamp"].to_string())
        );
    }
}

/// A 503 before MISP acted: no such sighting yet, so the request is sent again.
#[tokio::test]
async fn a_sighting_that_did_not_happen_is_sent_again() {
    let (sim, uuid) = sim_with_attributes().await;
    sim.fail_next(1, 503, None);
    let (result, _) = run(&sim, json!({"misp_attribute_uuid": uuid})).await;
    assert!(result.expect("the second add succeeds").success);
    let statuses: Vec<Option<u16>> = adds(&sim).iter().map(|r| r.status).collect();
    assert_eq!(statuses, [Some(503), Some(200)]);
    let check = sim
        .requests()
        .into_iter()
        .find(|request| request.path == "/sightings/restSearch/attribute")
        .expect("the check ran");
    assert_eq!(check.body["uuid"], json!(uuid));
    assert_eq!(sim.sightings().len(), 1);
}
