//! `misp_verdict` against misp-sim: verdicts from tags, warninglists, sightings and threat
//! levels, the one search (and the warninglist lookup only when needed), the rules of
//! `[fn_misp]`, and failures.

use fn_misp::test_support::{self, ProgressLog};
use misp_sim::{ForcedBody, ForcedResponse, MispSim, SimOptions};
use misp_verdict::MispVerdict;
use serde_json::{Value, json};
use soar_core::config::AppConfig;
use soar_core::{Function, FunctionContext, FunctionError, FunctionOutput};

const IP: &str = "198.51.100.7";
const RESOLVER: &str = "8.8.8.8";
const EMOTET: &str = r#"misp-galaxy:malpedia="Emotet""#;
const SOFACY: &str = r#"misp-galaxy:threat-actor="Sofacy""#;
/// 2026-11-30 10:00 UTC.
const LAST_SEEN: &str = "1796032800";

#[test]
fn the_function_is_registered_with_its_inputs() {
    let registry = soar_core::Registry::from_inventory().expect("no two functions share a name");
    let function = registry
        .get("misp_verdict")
        .expect("register_function! put it in the registry");
    let definition = function.definition();
    assert_eq!(definition, &misp_verdict::DEFINITION);
    assert_eq!(definition.destination, "fn_misp");
    let names: Vec<&str> = definition.inputs.iter().map(|field| field.name).collect();
    assert_eq!(names, vec!["misp_attribute_value", "misp_artifact_type"]);
    assert_eq!(definition.inputs[0], fn_misp::MISP_ATTRIBUTE_VALUE);
}

/// Event 12 holds [`IP`] tagged Emotet with three sightings; event 20 holds it in an
/// `ip-dst|port` under a Sofacy event tag and as text; event 30 holds [`RESOLVER`] without
/// to_ids; a resolver warninglist is enabled.
async fn sim() -> MispSim {
    let sim = MispSim::start(SimOptions::default()).await;
    sim.seed_event(json!({
        "id": "12", "info": "Emotet C2 servers", "threat_level_id": "2",
        "Tag": [{"name": "tlp:white"}],
        "Attribute": [{
            "type": "ip-dst", "category": "Network activity", "value": IP, "to_ids": true,
            "Tag": [{"name": EMOTET}],
            "Sighting": [
                {"type": "0", "date_sighting": "1790000000"},
                {"type": "0", "date_sighting": LAST_SEEN},
                {"type": "0", "date_sighting": "1795000000"},
            ],
        }],
    }));
    sim.seed_event(json!({
        "id": "20", "info": "Sofacy infrastructure", "threat_level_id": "3",
        "Tag": [{"name": SOFACY}],
        "Attribute": [
            {"type": "ip-dst|port", "category": "Network activity", "value": format!("{IP}|443"), "to_ids": false},
            {"type": "text", "category": "Other", "value": IP, "to_ids": false},
        ],
    }));
    sim.seed_event(json!({
        "id": "30", "info": "DNS lookups seen", "threat_level_id": "1",
        "Attribute": [{"type": "ip-dst", "value": RESOLVER, "to_ids": false}],
    }));
    sim.seed_warninglist(json!({
        "name": "List of known IPv4 public DNS resolvers", "type": "cidr",
        "category": "false_positive", "list": ["8.8.8.8/32", "8.8.4.4/32"],
        "matching_attributes": ["ip-src", "ip-dst", "domain|ip"],
    }));
    sim
}

fn config(sim: &MispSim, extra: &str) -> String {
    test_support::fn_misp_section(sim.url(), sim.key(), extra)
}

async fn run_in(context: &FunctionContext, inputs: Value) -> Result<FunctionOutput, FunctionError> {
    MispVerdict
        .run(context, &test_support::inputs(inputs))
        .await
}

async fn run(sim: &MispSim, inputs: Value) -> (Result<FunctionOutput, FunctionError>, Vec<String>) {
    run_with(sim, "", inputs).await
}

async fn run_with(
    sim: &MispSim,
    extra: &str,
    inputs: Value,
) -> (Result<FunctionOutput, FunctionError>, Vec<String>) {
    let log = ProgressLog::new();
    let context = test_support::context_from_config(&config(sim, extra), &log);
    let result = run_in(&context, inputs).await;
    (result, log.messages())
}

fn paths(sim: &MispSim) -> Vec<String> {
    sim.requests()
        .into_iter()
        .map(|request| request.path)
        .collect()
}

#[tokio::test]
async fn a_malicious_tag_on_the_attribute_decides_with_one_request() {
    let sim = sim().await;
    let (result, progress) = run(
        &sim,
        json!({"misp_attribute_value": IP, "misp_artifact_type": "IP Address"}),
    )
    .await;
    let output = result.expect("a verdict");
    assert!(output.success);
    let content = &output.content;
    assert_eq!(content["verdict"], "malicious");
    assert_eq!(content["score"], 100);
    assert_eq!(
        content["summary"],
        format!(
            r#"MISP: malicious (score 100) — tag {EMOTET} on attribute {IP} in event 12 "Emotet C2 servers"; 3 sightings, last 2026-11-30; on no warninglist"#
        )
    );
    assert_eq!(
        content["attributes_seen"], 2,
        "the text attribute is not an IP"
    );
    assert_eq!(content["evidence"]["decided_by"]["rule"], "attribute_tag");
    assert_eq!(content["evidence"]["decided_by"]["event"]["id"], "12");
    assert_eq!(content["evidence"]["sightings"]["sightings"], 3);
    assert_eq!(
        content["evidence"]["sightings"]["last_seen"],
        "2026-11-30T10:00:00Z"
    );
    let events: Vec<&Value> = content["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|event| &event["id"])
        .collect();
    assert_eq!(events, vec!["20", "12"]);
    let sofacy = content["evidence"]["tags"]
        .as_array()
        .expect("tags")
        .iter()
        .find(|tag| tag["name"] == SOFACY)
        .expect("the event tag is listed");
    assert_eq!(sofacy["verdict"], "suspicious");
    assert_eq!(sofacy["on_events"], json!(["20"]));
    assert_eq!(
        progress,
        test_support::progress(&[
            &format!(
                "Searching MISP for {IP} as ip-dst, ip-src, ip-dst|port, ip-src|port, domain|ip"
            ),
            "MISP has 2 attributes with this value in 2 events",
            "Verdict: malicious (score 100)",
        ])
    );
    assert_eq!(paths(&sim), vec!["/attributes/restSearch"]);
    assert_eq!(
        sim.requests()[0].body,
        json!({
            "value": IP,
            "type": ["ip-dst", "ip-src", "ip-dst|port", "ip-src|port", "domain|ip"],
            "limit": 100,
            "includeContext": true,
            "includeEventTags": true,
            "includeSightings": true,
            "includeWarninglistHits": true,
            "includeDecayScore": true,
            "returnFormat": "json",
        })
    );
    assert!(sim.unexpected_requests().is_empty());
}

#[tokio::test]
async fn an_event_tag_decides_when_the_attribute_has_none() {
    let sim = sim().await;
    sim.seed_event(json!({
        "id": "40", "info": "Sofacy again", "threat_level_id": "4",
        "Tag": [{"name": SOFACY}],
        "Attribute": [{"type": "domain", "value": "sofacy.example", "to_ids": true}],
    }));
    let (result, _) = run(
        &sim,
        json!({"misp_attribute_value": "sofacy.example", "misp_artifact_type": "DNS Name"}),
    )
    .await;
    let content = result.expect("a verdict").content;
    assert_eq!(content["verdict"], "suspicious");
    assert_eq!(content["score"], 60);
    let decided_by = &content["evidence"]["decided_by"];
    assert_eq!(decided_by["rule"], "event_tag");
    assert_eq!(decided_by["inherited"], true);
    assert_eq!(decided_by["tag"], SOFACY);
    assert_eq!(
        content["summary"],
        format!(
            r#"MISP: suspicious (score 60) — tag {SOFACY} on event 40 "Sofacy again" (inherited by its attribute sofacy.example); no sightings; on no warninglist"#
        )
    );
    assert_eq!(paths(&sim).len(), 1);
}

#[tokio::test]
async fn a_value_on_a_warninglist_is_benign_and_named() {
    let sim = sim().await;
    // MISP looked up no attribute (none has to_ids), so checkValue is asked.
    let (result, progress) = run(&sim, json!({"misp_attribute_value": RESOLVER})).await;
    let content = result.expect("a verdict").content;
    assert_eq!(content["verdict"], "benign");
    assert_eq!(content["score"], 0);
    assert_eq!(
        content["summary"],
        r#"MISP: benign (score 0) — on warninglist "List of known IPv4 public DNS resolvers" (entry 8.8.8.8/32); no sightings"#
    );
    assert_eq!(
        content["evidence"]["warninglists"],
        json!({"checked": "checkValue", "hits": [{
            "id": "1", "name": "List of known IPv4 public DNS resolvers", "category": null,
            "matched": "8.8.8.8/32", "benign": true,
        }]})
    );
    assert_eq!(content["types_searched"], Value::Null);
    assert_eq!(
        paths(&sim),
        vec!["/attributes/restSearch", "/warninglists/checkValue"]
    );
    assert_eq!(sim.requests()[1].body, json!([RESOLVER]));
    assert_eq!(
        progress,
        test_support::progress(&[
            "Searching MISP for 8.8.8.8 as any type",
            "MISP has 1 attribute with this value in 1 event",
            "Looking 8.8.8.8 up in MISP's warninglists",
            "Verdict: benign (score 0)",
        ])
    );
}

#[tokio::test]
async fn a_warninglist_hit_in_the_search_needs_no_second_request_and_beats_a_high_threat_level() {
    let sim = sim().await;
    sim.seed_event(json!({
        "id": "31", "info": "more lookups", "threat_level_id": "1",
        "Attribute": [{"type": "ip-dst", "value": "8.8.4.4", "to_ids": true,
                       "Tag": [{"name": SOFACY}]}],
    }));
    let (result, _) = run(&sim, json!({"misp_attribute_value": "8.8.4.4"})).await;
    let content = result.expect("a verdict").content;
    assert_eq!(content["verdict"], "benign");
    assert_eq!(content["evidence"]["decided_by"]["rule"], "warninglist");
    assert_eq!(content["evidence"]["warninglists"]["checked"], "search");
    assert_eq!(
        content["evidence"]["warninglists"]["hits"][0]["category"],
        "false_positive"
    );
    assert_eq!(paths(&sim), vec!["/attributes/restSearch"]);
}

#[tokio::test]
async fn a_value_misp_does_not_hold_is_unknown() {
    let sim = sim().await;
    let (result, progress) = run(
        &sim,
        json!({"misp_attribute_value": "203.0.113.50", "misp_artifact_type": "IP Address"}),
    )
    .await;
    let content = result.expect("a verdict").content;
    assert_eq!(content["verdict"], "unknown");
    assert_eq!(content["score"], 0);
    assert_eq!(
        content["summary"],
        "MISP: unknown (score 0) — in no MISP event; on no warninglist"
    );
    assert_eq!(content["attributes_seen"], 0);
    assert_eq!(content["events"], json!([]));
    assert_eq!(progress[2], "MISP has no attribute with this value");
    assert_eq!(paths(&sim).len(), 2);
}

#[tokio::test]
async fn a_high_threat_level_decides_when_no_tag_does() {
    let sim = sim().await;
    sim.seed_event(json!({
        "id": "50", "info": "Wiper", "threat_level_id": "1",
        "Attribute": [{"type": "md5", "value": "0123456789abcdef0123456789abcdef", "to_ids": true,
                       "Tag": [{"name": "tlp:amber"}]}],
    }));
    let (result, _) = run(
        &sim,
        json!({"misp_attribute_value": "0123456789ABCDEF0123456789ABCDEF", "misp_artifact_type": "Malware MD5 Hash"}),
    )
    .await;
    let content = result.expect("a verdict").content;
    assert_eq!(content["verdict"], "malicious");
    assert_eq!(content["score"], 80);
    assert_eq!(
        content["summary"],
        r#"MISP: malicious (score 80) — event 50 "Wiper" has threat level High; no sightings; on no warninglist"#
    );
}

#[tokio::test]
async fn false_positive_sightings_make_it_benign_and_decay_scores_are_reported() {
    let sim = sim().await;
    let now = chrono::Utc::now().timestamp();
    sim.seed_event(json!({
        "id": "60", "info": "Scanner", "threat_level_id": "2",
        "Attribute": [{"type": "ip-src", "value": "192.0.2.60", "to_ids": true,
                       "timestamp": (now - 5 * 86_400).to_string(),
                       "Sighting": [{"type": "0", "date_sighting": (now - 3 * 86_400).to_string()},
                                    {"type": "1", "date_sighting": (now - 86_400).to_string()}]}],
    }));
    sim.seed_decaying_model(json!({
        "id": "1", "name": "NIDS Simple Decaying Model", "attribute_types": ["ip-src"],
        "parameters": {"lifetime": 10, "decay_speed": 1, "threshold": 30, "default_base_score": 80},
    }));
    let (result, _) = run(&sim, json!({"misp_attribute_value": "192.0.2.60"})).await;
    let content = result.expect("a verdict").content;
    assert_eq!(content["verdict"], "benign");
    assert_eq!(
        content["evidence"]["decided_by"]["rule"],
        "false_positive_sightings"
    );
    let decay = &content["evidence"]["decay_scores"][0];
    assert_eq!(decay["model"], "NIDS Simple Decaying Model");
    assert_eq!(decay["decayed"], false);
    let score = decay["score"].as_f64().expect("a score");
    assert!((55.0..57.0).contains(&score), "three days of ten: {score}");
    let summary = content["summary"].as_str().expect("a summary");
    assert!(
        summary.starts_with(
            "MISP: benign (score 0) — reported as a false positive 1 time, the last on "
        ),
        "{summary}"
    );
    assert!(summary.contains("; 1 sighting, last "), "{summary}");
    assert!(
        summary.ends_with("; on no warninglist; decay score 56 (NIDS Simple Decaying Model)"),
        "{summary}"
    );
}

#[tokio::test]
async fn the_rules_come_from_fn_misp_by_tag_name() {
    let sim = sim().await;
    let extra =
        "verdict_malicious_tags = misp-galaxy:threat-actor=*\nverdict_check_warninglists = false";
    let (result, _) = run_with(&sim, extra, json!({"misp_attribute_value": "8.8.8.8"})).await;
    let content = result.expect("a verdict").content;
    // No tag on 8.8.8.8 and no lookup: event 30's threat level High decides.
    assert_eq!(content["verdict"], "malicious");
    assert_eq!(content["evidence"]["warninglists"]["checked"], "no");
    assert!(
        content["summary"]
            .as_str()
            .is_some_and(|summary| summary.ends_with("; warninglists not checked"))
    );
    assert_eq!(paths(&sim), vec!["/attributes/restSearch"]);
    let (result, _) = run_with(
        &sim,
        "verdict_malicious_tags = misp-galaxy:threat-actor=*",
        json!({"misp_attribute_value": IP, "misp_artifact_type": "ip-dst|port"}),
    )
    .await;
    let content = result.expect("a verdict").content;
    assert_eq!(content["verdict"], "malicious");
    assert_eq!(content["score"], 90);
    assert_eq!(content["types_searched"], json!(["ip-dst|port"]));
}

#[tokio::test]
async fn a_bad_rule_is_a_config_error_at_start_up_and_at_the_call() {
    let sim = sim().await;
    let text = config(&sim, "verdict_suspicous_tags = tlp:red");
    let app_config = AppConfig::parse(&text, "app.config").expect("parses");
    let problem = MispVerdict
        .check_config(&app_config)
        .expect_err("an unknown key");
    assert!(
        problem.starts_with(
            "app.config: [fn_misp] verdict_suspicous_tags is not a verdict setting; known: "
        ),
        "{problem}"
    );
    let registry = soar_core::Registry::from_inventory().expect("registry");
    let problems = registry.config_problems(&app_config);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0].0, "misp_verdict");
    let (result, progress) = run_with(
        &sim,
        "verdict_benign_tags = good:*,",
        json!({"misp_attribute_value": IP}),
    )
    .await;
    let error = result.expect_err("a trailing comma");
    assert!(matches!(error, FunctionError::Config(_)), "{error:?}");
    assert_eq!(
        error.to_string(),
        "test app.config: [fn_misp] verdict_benign_tags has an empty pattern (two commas in a row, or one at an end)"
    );
    assert!(progress.is_empty());
    assert_eq!(sim.request_count(), 0);
    let fine = AppConfig::parse(&config(&sim, ""), "app.config").expect("parses");
    assert_eq!(MispVerdict.check_config(&fine), Ok(()));
}

#[tokio::test]
async fn the_search_is_capped_at_search_limit() {
    let sim = sim().await;
    let (result, progress) = run_with(
        &sim,
        "search_limit=1",
        json!({"misp_attribute_value": IP, "misp_artifact_type": "IP Address"}),
    )
    .await;
    let content = result.expect("a verdict").content;
    assert_eq!(content["truncated"], true);
    assert_eq!(content["attributes_seen"], 1);
    assert_eq!(sim.requests()[0].body["limit"], 1);
    assert_eq!(
        progress[2],
        "MISP has 1 attribute with this value in 1 event (search_limit reached)"
    );
    assert!(content["summary"].as_str().is_some_and(|summary| {
        summary.ends_with("; only the first 1 attributes read (search_limit)")
    }));
}

#[tokio::test]
async fn a_failed_search_is_misps_error() {
    let sim = sim().await;
    sim.fail_next(1, 500, None);
    let (result, progress) = run(&sim, json!({"misp_attribute_value": IP})).await;
    let error = result.expect_err("MISP failed");
    assert!(matches!(error, FunctionError::Misp(_)), "{error:?}");
    assert!(
        error
            .to_string()
            .contains("An Internal Error Has Occurred."),
        "{error}"
    );
    assert_eq!(
        progress.len(),
        2,
        "no verdict after the search: {progress:?}"
    );
}

#[tokio::test]
async fn a_failed_warninglist_lookup_still_gives_a_verdict() {
    let sim = sim().await;
    sim.force_next(
        1,
        ForcedResponse {
            status: 200,
            headers: Vec::new(),
            body: ForcedBody::Json(json!({"response": {"Attribute": []}})),
        },
    );
    sim.fail_next(1, 403, None);
    let (result, progress) = run(&sim, json!({"misp_attribute_value": RESOLVER})).await;
    let content = result.expect("a verdict without the lists").content;
    assert_eq!(content["verdict"], "unknown");
    assert_eq!(content["evidence"]["warninglists"]["checked"], "failed");
    assert!(
        content["summary"]
            .as_str()
            .is_some_and(|summary| summary.ends_with("; warninglists could not be checked"))
    );
    assert!(
        progress[4].starts_with("MISP's warninglists could not be checked, so they do not count: "),
        "{progress:?}"
    );
}

#[tokio::test]
async fn the_value_is_required() {
    let sim = sim().await;
    let (result, _) = run(&sim, json!({"misp_artifact_type": "URL"})).await;
    assert_eq!(
        result.expect_err("no value").to_string(),
        "input 'misp_attribute_value' is required but was not given"
    );
    assert_eq!(sim.request_count(), 0);
}

#[tokio::test]
async fn an_unknown_artifact_type_searches_every_type_and_says_so() {
    let sim = sim().await;
    let (result, progress) = run(
        &sim,
        json!({"misp_attribute_value": IP, "misp_artifact_type": "Password"}),
    )
    .await;
    assert_eq!(
        result.expect("a verdict").content["attributes_seen"],
        3,
        "the text attribute counts too"
    );
    assert_eq!(
        progress[1],
        format!(
            "Searching MISP for {IP} as any type ('Password' is not an artifact type this function maps to MISP types)"
        )
    );
    assert!(sim.requests()[0].body.get("type").is_none());
}

#[tokio::test]
async fn a_config_without_a_key_fails_once_misp_is_needed() {
    let log = ProgressLog::new();
    let context =
        test_support::context_from_config("[fn_misp]\nmisp_url=https://misp.example\n", &log);
    let error = run_in(&context, json!({"misp_attribute_value": IP}))
        .await
        .expect_err("no key");
    assert!(matches!(error, FunctionError::Config(_)), "{error:?}");
}
