//! `misp_add_object` against misp-sim: objects from templates, the checks before MISP is
//! called, MISP's refusals, and a repeated call adding its object once.

use fn_misp::test_support::{self, ProgressLog};
use misp_add_object::MispAddObject;
use misp_sim::{MispSim, SimOptions};
use serde_json::{Value, json};
use soar_core::{CallOrigin, Function, FunctionContext, FunctionError, FunctionOutput};

const EVENT_UUID: &str = "3c1e5a7b-9d2f-4e6a-8b1c-5d7e9f0a2b4c";

async fn sim_with_event() -> MispSim {
    let sim = MispSim::start(SimOptions::default()).await;
    sim.seed_event(json!({"id": "12", "uuid": EVENT_UUID, "info": "phishing"}));
    sim
}

async fn run_in(context: &FunctionContext, inputs: Value) -> Result<FunctionOutput, FunctionError> {
    MispAddObject
        .run(context, &test_support::inputs(inputs))
        .await
}

async fn run(sim: &MispSim, inputs: Value) -> (Result<FunctionOutput, FunctionError>, Vec<String>) {
    let log = ProgressLog::new();
    let context = test_support::context(sim.url(), sim.key(), &log);
    let result = run_in(&context, inputs).await;
    (result, log.messages())
}

fn url_inputs() -> Value {
    json!({
        "misp_event_id": 12,
        "misp_object_template": "url",
        "misp_object_attributes": {"format": "text", "content": "{\"url\": \"https://bad.example/login\", \"host\": \"bad.example\"}"},
        "misp_comment": "from incident 2095",
    })
}

fn paths(sim: &MispSim) -> Vec<String> {
    sim.requests()
        .into_iter()
        .map(|request| request.path)
        .collect()
}

#[test]
fn the_function_is_registered_under_its_api_name() {
    let registry = soar_core::Registry::from_inventory().expect("no two functions share a name");
    let function = registry
        .get("misp_add_object")
        .expect("register_function! put it in the registry");
    assert_eq!(function.definition(), &misp_add_object::DEFINITION);
}

#[tokio::test]
async fn a_url_object_is_added_from_its_template() {
    let sim = sim_with_event().await;
    let (result, progress) = run(&sim, url_inputs()).await;
    let output = result.expect("the object is added");
    assert!(output.success);
    let object = &output.content["Object"];
    assert_eq!(object["name"], "url");
    assert_eq!(object["comment"], "from incident 2095");
    assert_eq!(object["event_id"], "12");
    let relations: Vec<&str> = object["Attribute"]
        .as_array()
        .expect("attributes")
        .iter()
        .filter_map(|attribute| attribute["object_relation"].as_str())
        .collect();
    assert_eq!(relations, ["host", "url"]);
    assert_eq!(
        progress,
        test_support::progress(&[
            "Reading MISP's object template url",
            "Adding a url object with 2 attributes to event 12",
            &format!(
                "Object {} has been added",
                object["id"].as_str().unwrap_or("")
            ),
        ])
    );
    assert_eq!(
        paths(&sim),
        [
            "/objectTemplates/index",
            "/objectTemplates/view/2",
            "/objects/add/12/2"
        ]
    );
    let add = &sim.requests()[2];
    assert_eq!(add.body["name"], "url");
    assert_eq!(
        add.body["Attribute"][1],
        json!({"object_relation": "url", "type": "url", "value": "https://bad.example/login"})
    );
    assert!(
        uuid_of(&add.body).is_some(),
        "the object's UUID is sent: {}",
        add.body
    );
    assert_eq!(sim.objects().len(), 1);

    // The template is read once per process.
    sim.clear_requests();
    let mut again = url_inputs();
    again["misp_object_attributes"] = json!("{\"url\": \"https://bad.example/other\"}");
    run(&sim, again).await.0.expect("a second object");
    assert_eq!(paths(&sim), ["/objects/add/12/2"]);
    assert!(sim.unexpected_requests().is_empty());
}

fn uuid_of(body: &Value) -> Option<uuid::Uuid> {
    body["uuid"].as_str().and_then(|text| text.parse().ok())
}

#[tokio::test]
async fn an_event_named_by_uuid_and_lists_of_values_work() {
    let sim = sim_with_event().await;
    let (result, progress) = run(
        &sim,
        json!({
            "misp_event_uuid": EVENT_UUID,
            "misp_object_template": "Domain-IP",
            "misp_object_attributes": "{\"domain\": \"bad.example\", \"ip\": [\"192.0.2.1\", \"192.0.2.2\"]}",
        }),
    )
    .await;
    let output = result.expect("added");
    assert_eq!(output.content["Object"]["name"], "domain-ip");
    assert_eq!(
        output.content["Object"]["Attribute"]
            .as_array()
            .map(Vec::len),
        Some(3)
    );
    assert_eq!(
        progress[2],
        format!("Adding a domain-ip object with 3 attributes to event {EVENT_UUID}")
    );
}

#[tokio::test]
async fn a_missing_requirement_is_refused_before_the_object_is_sent() {
    let sim = sim_with_event().await;
    let mut inputs = url_inputs();
    inputs["misp_object_attributes"] = json!("{\"host\": \"bad.example\"}");
    let error = run(&sim, inputs).await.0.expect_err("url or resource_path");
    assert_eq!(
        error.to_string(),
        "input 'misp_object_attributes': the url template requires at least one of: url, resource_path"
    );
    assert!(!paths(&sim).iter().any(|path| path.starts_with("/objects/")));
}

#[tokio::test]
async fn an_unknown_relation_is_refused_naming_the_templates_relations() {
    let sim = sim_with_event().await;
    let mut inputs = url_inputs();
    inputs["misp_object_template"] = json!("ip-port");
    inputs["misp_object_attributes"] = json!("{\"ip\": \"192.0.2.1\", \"port\": 443}");
    let error = run(&sim, inputs).await.0.expect_err("port is dst-port");
    let message = error.to_string();
    assert!(
        message.starts_with("input 'misp_object_attributes': 'port' is not a relation of the ip-port template; its relations: AS, country-code, domain, dst-port,"),
        "{message}"
    );
}

#[tokio::test]
async fn an_unknown_template_is_refused_with_the_closest_and_common_names() {
    let sim = sim_with_event().await;
    let mut inputs = url_inputs();
    inputs["misp_object_template"] = json!("domain_ip");
    let error = run(&sim, inputs).await.0.expect_err("no such template");
    assert_eq!(
        error.to_string(),
        "input 'misp_object_template' is \"domain_ip\", MISP has no object template of that name; closest: domain-ip; common ones: file, url, domain-ip, ip-port, email"
    );
}

#[tokio::test]
async fn an_unknown_event_is_named() {
    let sim = sim_with_event().await;
    let mut inputs = url_inputs();
    inputs["misp_event_id"] = json!(99);
    let error = run(&sim, inputs).await.0.expect_err("no event 99");
    assert_eq!(
        error.to_string(),
        "MISP has no event with ID 99, or the API key's user cannot see it"
    );
}

#[tokio::test]
async fn a_value_misp_refuses_is_a_failed_result_with_its_reason() {
    let sim = sim_with_event().await;
    let mut inputs = url_inputs();
    inputs["misp_object_template"] = json!("ip-port");
    inputs["misp_object_attributes"] = json!("{\"ip\": \"not an address\"}");
    let output = run(&sim, inputs)
        .await
        .0
        .expect("MISP's refusal is a result");
    assert!(!output.success);
    let errors = output.content["errors"].as_str().unwrap_or_default();
    assert!(
        errors.starts_with(
            "Could not save object as at least one attribute has failed validation (ip)."
        ),
        "{}",
        output.content
    );
    assert!(sim.objects().is_empty());
}

#[tokio::test]
async fn without_the_event_or_the_attributes_nothing_is_sent() {
    let sim = sim_with_event().await;
    let error = run(
        &sim,
        json!({"misp_object_template": "url", "misp_object_attributes": "{\"url\": \"https://x.example/\"}"}),
    )
    .await
    .0
    .expect_err("no event");
    assert_eq!(
        error.to_string(),
        "input 'misp_event_id' or 'misp_event_uuid' is required but was not given"
    );
    let error = run(
        &sim,
        json!({"misp_event_id": 12, "misp_object_template": "url"}),
    )
    .await
    .0
    .expect_err("no attributes");
    assert_eq!(
        error.to_string(),
        "input 'misp_object_attributes' is required but was not given"
    );
    assert!(sim.requests().is_empty());
}

#[tokio::test]
async fn a_lost_answer_is_read_back_by_the_objects_uuid() {
    let sim = sim_with_event().await;
    let log = ProgressLog::new();
    let config = format!(
        "[fn_misp]\nmisp_url={}\nmisp_key={}\nverify_cert=false\nretries=1\ntimeout=10\n",
        sim.url(),
        sim.key()
    );
    let context = test_support::context_from_config(&config, &log);
    // Read the template first, so that the lost answer is the add's.
    run_in(&context, url_inputs()).await.expect("first object");
    sim.clear_requests();
    sim.lose_next_answers(1);
    let mut inputs = url_inputs();
    inputs["misp_object_attributes"] = json!("{\"url\": \"https://bad.example/lost\"}");
    let output = run_in(&context, inputs).await.expect("read back");
    assert_eq!(sim.objects().len(), 2, "the lost add was not repeated");
    assert_eq!(
        output.content["Object"]["Attribute"][0]["value"],
        "https://bad.example/lost"
    );
    assert!(output.content["Object"].get("Event").is_none());
    let seen = paths(&sim);
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert!(seen[1].starts_with("/objects/view/"), "{seen:?}");
}

#[tokio::test]
async fn the_same_call_from_soar_twice_adds_one_object() {
    let sim = sim_with_event().await;
    let origin = CallOrigin {
        org_id: Some(201),
        workflow_instance_id: Some(5),
        playbook_instance_id: None,
    };
    let mut answers = Vec::new();
    for _ in 0..2 {
        let log = ProgressLog::new();
        let context = test_support::context(sim.url(), sim.key(), &log).with_origin(origin.clone());
        answers.push(
            run_in(&context, url_inputs())
                .await
                .expect("added or found"),
        );
    }
    assert_eq!(sim.objects().len(), 1);
    assert!(answers[1].success);
    assert_eq!(answers[0].content, answers[1].content);
    let adds: Vec<_> = sim
        .requests()
        .into_iter()
        .filter(|request| request.path.starts_with("/objects/add/"))
        .collect();
    assert_eq!(adds.len(), 2);
    assert_eq!(adds[1].status, Some(403), "MISP refused the taken UUID");

    // Outside SOAR, two identical calls add two objects.
    run(&sim, url_inputs()).await.0.expect("added");
    run(&sim, url_inputs()).await.0.expect("added");
    assert_eq!(sim.objects().len(), 3);
}
