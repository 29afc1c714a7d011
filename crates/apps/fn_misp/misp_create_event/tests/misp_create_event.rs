//! `misp_create_event` as SOAR sees it: its definition against the original export, and
//! runs against misp-sim.

use fn_misp::test_support::{self, ProgressLog};
use misp_create_event::MispCreateEvent;
use misp_sim::{MispSim, RolePermissions, SimOptions};
use serde_json::json;
use soar_core::misp::MispError;
use soar_core::{Function, FunctionError, FunctionOutput};

#[test]
fn definition_matches_the_original_export() {
    test_support::assert_matches_export(&misp_create_event::DEFINITION);
}

#[test]
fn the_function_is_registered_under_its_api_name() {
    let registry = soar_core::Registry::from_inventory().expect("no two functions share a name");
    let function = registry
        .get("misp_create_event")
        .expect("register_function! put it in the registry");
    assert_eq!(function.definition(), &misp_create_event::DEFINITION);
}

#[test]
fn the_export_comparison_notices_a_changed_field() {
    // Guards the check itself: a definition with one wrong tooltip and a swapped input order
    // must be reported, or the test above proves nothing.
    let mut changed = misp_create_event::DEFINITION;
    let mut inputs = changed.inputs.to_vec();
    inputs[1].tooltip = "Organisation only=0";
    inputs.swap(2, 3);
    changed.inputs = Box::leak(inputs.into_boxed_slice());
    let problems = test_support::export_differences(&changed, &test_support::export_res());
    assert_eq!(
        problems.len(),
        2,
        "expected two differences, got {problems:#?}"
    );
    assert!(problems[0].starts_with("view_items"), "{problems:#?}");
    assert!(
        problems[1].starts_with("__function/misp_distribution tooltip"),
        "{problems:#?}"
    );
}

async fn run(
    sim: &MispSim,
    inputs: serde_json::Value,
) -> (Result<FunctionOutput, FunctionError>, Vec<String>) {
    let log = ProgressLog::new();
    let context = test_support::context(sim.url(), sim.key(), &log);
    let result = MispCreateEvent
        .run(&context, &test_support::inputs(inputs))
        .await;
    (result, log.messages())
}

#[tokio::test]
async fn the_original_test_cases_create_events() {
    let sim = MispSim::start(SimOptions::default()).await;
    for (distribution, threat, analysis) in [(0, 1, 0), (1, 2, 1)] {
        let (result, progress) = run(
            &sim,
            json!({
                "misp_event_name": "sample text",
                "misp_distribution": distribution,
                "misp_threat_level": threat,
                "misp_analysis_level": analysis,
            }),
        )
        .await;
        let output = result.expect("the event is created");
        assert!(output.success);
        let event = &output.content["Event"];
        assert_eq!(event["info"], "sample text");
        assert_eq!(event["distribution"], distribution.to_string());
        assert_eq!(event["threat_level_id"], threat.to_string());
        assert_eq!(event["analysis"], analysis.to_string());
        assert!(event["id"].is_string(), "MISP's ids are strings: {event}");
        assert_eq!(
            progress,
            test_support::progress(&["Creating event sample text", "Event has been created"])
        );
    }
    let adds: Vec<_> = sim
        .requests()
        .into_iter()
        .filter(|request| request.path == "/events/add")
        .collect();
    assert_eq!(adds.len(), 2, "one POST /events/add per run");
    assert_eq!(adds[1].method, "POST");
    assert_eq!(
        adds[1].body,
        json!({"Event": {"info": "sample text", "distribution": "1", "threat_level_id": "2", "analysis": "1"}})
    );
    assert!(sim.unexpected_requests().is_empty());
}

#[tokio::test]
async fn only_the_name_is_needed_and_misp_fills_in_the_rest() {
    let sim = MispSim::start(SimOptions::default()).await;
    let (result, _) = run(&sim, json!({"misp_event_name": "Incident 2095"})).await;
    let output = result.expect("the event is created");
    assert_eq!(output.content["Event"]["info"], "Incident 2095");
    let add = sim
        .requests()
        .into_iter()
        .find(|request| request.path == "/events/add")
        .expect("the event was posted");
    assert_eq!(add.body, json!({"Event": {"info": "Incident 2095"}}));
}

#[tokio::test]
async fn an_out_of_range_level_is_refused_before_misp_is_called() {
    let sim = MispSim::start(SimOptions::default()).await;
    let (result, progress) = run(
        &sim,
        json!({"misp_event_name": "x", "misp_threat_level": 9}),
    )
    .await;
    let error = result.expect_err("threat level 9 does not exist");
    assert!(matches!(error, FunctionError::Input(_)), "{error:?}");
    assert_eq!(
        error.to_string(),
        "input 'misp_threat_level' is 9, must be from 1 to 4 (1 high, 2 medium, 3 low, 4 undefined)"
    );
    assert!(progress.is_empty(), "nothing was attempted: {progress:?}");
    assert_eq!(sim.request_count(), 0);
}

#[tokio::test]
async fn misps_refusal_is_an_error_that_never_shows_the_key() {
    let sim = MispSim::start(SimOptions::default()).await;
    sim.set_permissions(RolePermissions::read_only());
    let (result, progress) = run(&sim, json!({"misp_event_name": "x"})).await;
    let error = result.expect_err("a read-only user cannot add events");
    assert!(
        matches!(
            error,
            FunctionError::Misp(MispError::Forbidden { status: 403, .. })
        ),
        "{error:?}"
    );
    let text = error.to_string();
    assert!(
        text.contains("You do not have permission to use this functionality."),
        "MISP's words are kept: {text}"
    );
    assert!(!text.contains(sim.key()), "the key leaked: {text}");
    assert!(!format!("{error:?}").contains(sim.key()), "the key leaked");
    assert_eq!(
        progress,
        test_support::progress(&["Creating event x"]),
        "no success message after a failure"
    );
}

fn from_soar() -> soar_core::CallOrigin {
    soar_core::CallOrigin {
        org_id: Some(201),
        workflow_instance_id: Some(88),
        playbook_instance_id: None,
    }
}

async fn run_from_soar(sim: &MispSim, inputs: serde_json::Value) -> FunctionOutput {
    let log = ProgressLog::new();
    let context = test_support::context(sim.url(), sim.key(), &log).with_origin(from_soar());
    MispCreateEvent
        .run(&context, &test_support::inputs(inputs))
        .await
        .expect("the event is created or found")
}

#[tokio::test]
async fn the_same_call_from_soar_twice_creates_one_event_and_answers_with_it_both_times() {
    let sim = MispSim::start(SimOptions::default()).await;
    let inputs = json!({"misp_event_name": "Incident 2095", "misp_threat_level": 2});
    let first = run_from_soar(&sim, inputs.clone()).await;
    let second = run_from_soar(&sim, inputs).await;
    assert_eq!(sim.events().len(), 1, "one event: {:#?}", sim.events());
    assert_eq!(first.content["Event"]["id"], second.content["Event"]["id"]);
    assert_eq!(
        first.content["Event"]["uuid"],
        second.content["Event"]["uuid"]
    );
    assert_eq!(second.content["Event"]["info"], "Incident 2095");
    let adds: Vec<_> = sim
        .requests()
        .into_iter()
        .filter(|request| request.path == "/events/add")
        .collect();
    assert_eq!(adds.len(), 2);
    assert_eq!(adds[1].status, Some(404), "MISP refused the taken UUID");
    assert_eq!(
        adds[0].body["Event"]["uuid"],
        first.content["Event"]["uuid"]
    );
}

#[tokio::test]
async fn a_lost_answer_is_followed_by_a_read_back_not_a_second_event() {
    let sim = MispSim::start(SimOptions::default()).await;
    sim.lose_next_answers(1);
    let log = ProgressLog::new();
    let config = format!(
        "[fn_misp]\nmisp_url={}\nmisp_key={}\nverify_cert=false\nretries=1\ntimeout=10\n",
        sim.url(),
        sim.key()
    );
    let context = test_support::context_from_config(&config, &log).with_origin(from_soar());
    let output = MispCreateEvent
        .run(
            &context,
            &test_support::inputs(json!({"misp_event_name": "lost"})),
        )
        .await
        .expect("the event is read back");
    assert_eq!(sim.events().len(), 1);
    assert_eq!(output.content["Event"]["info"], "lost");
    let paths: Vec<String> = sim
        .requests()
        .into_iter()
        .map(|request| request.path)
        .collect();
    assert_eq!(paths[0], "/events/add");
    assert!(paths[1].starts_with("/events/view/"), "{paths:?}");
    assert_eq!(paths.len(), 2, "{paths:?}");
}

#[tokio::test]
async fn another_workflow_or_a_call_outside_soar_creates_another_event() {
    let sim = MispSim::start(SimOptions::default()).await;
    let inputs = json!({"misp_event_name": "twice"});
    run_from_soar(&sim, inputs.clone()).await;
    let log = ProgressLog::new();
    let other = soar_core::CallOrigin {
        workflow_instance_id: Some(89),
        ..from_soar()
    };
    let context = test_support::context(sim.url(), sim.key(), &log).with_origin(other);
    MispCreateEvent
        .run(&context, &test_support::inputs(inputs.clone()))
        .await
        .expect("created");
    let (first, _) = run(&sim, inputs.clone()).await;
    let (second, _) = run(&sim, inputs).await;
    first.expect("created");
    second.expect("created");
    assert_eq!(sim.events().len(), 4);
}
