//! Micro-benchmarks of the per-call work in soar-core: reading the function message, the
//! typed input getters, and building and serializing the version 2 result payload.
//!
//! Run with `cargo bench -p soar-core`; `cargo test` runs each benchmark once as a smoke test.

use std::hint::black_box;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use serde_json::{Value, json};
use soar_core::message::parse_call;
use soar_core::{FunctionOutput, Inputs, Metrics, result_payload};

/// Inputs with every form a function reads: text, textarea, number, select, boolean and
/// multiselect, as SOAR sends them.
fn function_inputs() -> Value {
    json!({
        "misp_event_id": 42,
        "misp_attribute_value": "203.0.113.17",
        "misp_attribute_type": {"id": 3971, "name": "ip-dst"},
        "misp_attribute_category": {"id": 3980, "name": "Network activity"},
        "misp_to_ids": true,
        "misp_attribute_comment": {
            "format": "text",
            "content": "Seen in the phishing campaign of incident 2095; the sender domain resolved to this address between 2026-11-20 and 2026-11-27."
        },
        "misp_tags": [{"id": 4001, "name": "tlp:amber"}, {"id": 4002, "name": "PAP:GREEN"}],
        "misp_sighting_source": null,
    })
}

/// A FunctionDataDTO body shaped like the one SOAR sends (see
/// `tests/fixtures/soar/resilient_circuits_wire_excerpt.txt`), about 1.5 KB.
fn function_message_body() -> Vec<u8> {
    let workflow = json!({
        "workflow_id": 155, "programmatic_name": "example_misp_create_attribute",
        "name": "Example: MISP Create Attribute", "description": null, "uuid": null,
        "object_type": {"id": 0, "name": "incident"}, "actions": [], "tags": []
    });
    let message = json!({
        "function": {
            "id": 146, "name": "misp_create_attribute", "display_name": "MISP Create Attribute",
            "description": {"format": "text", "content": "Create an attribute on an existing MISP event"},
            "uuid": "2d5ee9a6-4e4f-4a8e-9c1f-4b8c5b4f6a11", "version": 1, "creator": null,
            "view_items": [], "workflows": [],
            "tags": [{"tag_handle": {"id": 9, "name": "fn_misp", "display_name": "fn_misp"}, "value": null}]
        },
        "groups": [],
        "inputs": function_inputs(),
        "playbook_instance": null,
        "principal": {"id": 1, "type": "user", "name": "admin@example.com", "display_name": "Admin User"},
        "workflow": workflow.clone(),
        "workflow_instance": {"workflow_instance_id": 23061001, "workflow": workflow}
    });
    serde_json::to_vec(&message).expect("a json! value serializes")
}

/// What `misp_search_attribute` returns for one matching event with ten tagged attributes.
fn search_output() -> FunctionOutput {
    let attributes: Vec<Value> = (0..10)
        .map(|index| {
            json!({
                "id": (100 + index).to_string(), "type": "ip-dst", "category": "Network activity",
                "to_ids": true, "uuid": format!("094aed52-7446-4053-b2b1-bfc4368846{index:02}"),
                "event_id": "10", "distribution": "5", "timestamp": "1701370145", "comment": "",
                "sharing_group_id": "0", "deleted": false, "disable_correlation": false,
                "object_id": "0", "object_relation": null, "first_seen": null, "last_seen": null,
                "value": format!("203.0.113.{index}"),
                "Galaxy": [], "ShadowAttribute": [],
                "Tag": [
                    {"id": "1", "name": "tlp:white", "colour": "#ffffff", "exportable": true, "local": 0},
                    {"id": "7", "name": "misp-galaxy:mitre-attack-pattern=\"Phishing - T1566\"", "colour": "#0088cc", "exportable": true, "local": 0},
                    {"id": "9", "name": "PAP:GREEN", "colour": "#33cc33", "exportable": true, "local": 0}
                ]
            })
        })
        .collect();
    let events = json!([{"Event": {
        "id": "10", "orgc_id": "1", "org_id": "1", "date": "2026-11-27", "threat_level_id": "1",
        "info": "Phishing campaign 42", "published": false,
        "uuid": "8313b298-aa56-4cb4-9dca-c295e25754b9", "attribute_count": "10", "analysis": "2",
        "timestamp": "1701370145", "distribution": "0",
        "Org": {"id": "1", "name": "ORGNAME", "uuid": "40e5d872-1571-4c7d-9d2d-9d234710c5e5", "local": true},
        "Orgc": {"id": "1", "name": "ORGNAME", "uuid": "40e5d872-1571-4c7d-9d2d-9d234710c5e5", "local": true},
        "Attribute": attributes,
        "Tag": [{"id": "1", "name": "tlp:white", "colour": "#ffffff", "exportable": true, "local": 0}],
        "ShadowAttribute": [], "RelatedEvent": [], "Galaxy": [], "Object": [], "EventReport": []
    }}]);
    FunctionOutput::success(events)
        .with_extra(
            "tags",
            json!([
                "PAP:GREEN",
                "misp-galaxy:mitre-attack-pattern=\"Phishing - T1566\"",
                "tlp:white"
            ]),
        )
        .with_extra(
            "attack_techniques",
            json!([{"id": "T1566", "name": "Phishing"}]),
        )
}

/// Fixed metrics: `Metrics::now` reads the clock and the host name, which is not what is
/// measured here.
fn metrics() -> Metrics {
    Metrics {
        package: "fn-misp".into(),
        package_version: "3.0.2".into(),
        host: "runner".into(),
        execution_time_ms: 466,
        timestamp: "2026-11-28 10:00:00".into(),
    }
}

/// The getters `misp_create_attribute` and its neighbours call, in one pass.
fn read_every_input(inputs: &Inputs) -> usize {
    let event_id = inputs
        .required_integer("misp_event_id")
        .expect("the event id is a number");
    let value = inputs
        .required_text("misp_attribute_value")
        .expect("the value is text");
    let kind = inputs
        .required_select("misp_attribute_type")
        .expect("the type is a select");
    let category = inputs
        .select("misp_attribute_category")
        .expect("the category is a select");
    let to_ids = inputs.boolean("misp_to_ids").expect("to_ids is a boolean");
    let comment = inputs
        .text("misp_attribute_comment")
        .expect("the comment is a textarea");
    let tags = inputs
        .multiselect("misp_tags")
        .expect("tags are a multiselect");
    let source = inputs
        .text("misp_sighting_source")
        .expect("an unset input reads as None");
    black_box((
        event_id, &value, &kind, &category, to_ids, &comment, &tags, &source,
    ));
    value.len() + kind.len() + tags.len()
}

fn message(criterion: &mut Criterion) {
    let body = function_message_body();
    let call = parse_call(&body).expect("the benchmark body is a function message");
    assert_eq!(call.function, "misp_create_attribute");
    assert_eq!(call.workflow_instance_id, Some(23061001));

    let mut group = criterion.benchmark_group("message");
    group.throughput(Throughput::Bytes(body.len() as u64));
    group.bench_function("parse_call", |bencher| {
        bencher.iter(|| parse_call(black_box(&body)));
    });
    group.finish();
}

fn inputs(criterion: &mut Criterion) {
    let value = function_inputs();
    let inputs = Inputs::from_value(value.clone()).expect("the inputs are an object");
    assert!(read_every_input(&inputs) > 0);
    assert_eq!(inputs.normalized()["misp_attribute_type"], json!("ip-dst"));

    let mut group = criterion.benchmark_group("inputs");
    // The value is cloned outside the timing: from_value takes it by value, as the runner
    // hands over the inputs of the parsed call.
    group.bench_function("from_value_and_typed_getters", |bencher| {
        bencher.iter_batched(
            || value.clone(),
            |value| {
                let inputs = Inputs::from_value(black_box(value)).expect("an object");
                read_every_input(&inputs)
            },
            BatchSize::SmallInput,
        );
    });
    group.bench_function("normalized", |bencher| {
        bencher.iter(|| black_box(&inputs).normalized());
    });
    group.finish();
}

fn payload(criterion: &mut Criterion) {
    let output = search_output();
    let normalized = Inputs::from_value(json!({"misp_attribute_value": "203.0.113.17"}))
        .expect("the inputs are an object")
        .normalized();
    let serialized = serde_json::to_vec(&result_payload(
        output.clone(),
        normalized.clone(),
        metrics(),
    ))
    .expect("the payload serializes");

    let mut group = criterion.benchmark_group("payload");
    // The owned arguments are made outside the timing and the result dropped outside it.
    group.bench_function("result_payload_search_attribute", |bencher| {
        bencher.iter_batched(
            || (output.clone(), normalized.clone(), metrics()),
            |(output, normalized, metrics)| result_payload(black_box(output), normalized, metrics),
            BatchSize::SmallInput,
        );
    });
    group.throughput(Throughput::Bytes(serialized.len() as u64));
    group.bench_function("result_payload_search_attribute_to_vec", |bencher| {
        bencher.iter_batched(
            || (output.clone(), normalized.clone(), metrics()),
            |(output, normalized, metrics)| {
                let payload = result_payload(black_box(output), normalized, metrics);
                serde_json::to_vec(&payload).expect("the payload serializes")
            },
            BatchSize::SmallInput,
        );
    });
    group.finish();
}

criterion_group!(benches, message, inputs, payload);
criterion_main!(benches);
