//! `misp_verdict` through ActiveMQ against misp-sim: the verdicts SOAR gets back with their
//! summary and evidence, the one MISP request behind each, a failing MISP, and verdict rules
//! that are wrong in `app.config`, reported at start-up.

use serde_json::json;

use super::support::{Harness, RunnerOptions, call_fn_misp, run_to_completion};
use super::{WAIT, completed_results, error_message, final_reply, messages, misp_paths};

const IP: &str = "198.51.100.7";
const RESOLVER: &str = "8.8.8.8";
const EMOTET: &str = r#"misp-galaxy:malpedia="Emotet""#;

/// Event 12 holds [`IP`] tagged Emotet with two sightings; event 30 holds [`RESOLVER`]
/// without to_ids; a resolver warninglist is enabled.
fn seed(harness: &Harness) {
    harness.misp.seed_event(json!({
        "id": "12", "info": "Emotet C2 servers", "threat_level_id": "2",
        "Tag": [{"name": "tlp:white"}],
        "Attribute": [{
            "type": "ip-dst", "value": IP, "to_ids": true, "Tag": [{"name": EMOTET}],
            "Sighting": [{"type": "0", "date_sighting": "1790000000"},
                         {"type": "0", "date_sighting": "1796032800"}],
        }],
    }));
    harness.misp.seed_event(json!({
        "id": "30", "info": "DNS lookups seen", "threat_level_id": "1",
        "Attribute": [{"type": "ip-dst", "value": RESOLVER, "to_ids": false}],
    }));
    harness.misp.seed_warninglist(json!({
        "name": "List of known IPv4 public DNS resolvers", "type": "cidr",
        "list": ["8.8.8.8/32"], "matching_attributes": ["ip-src", "ip-dst"],
    }));
}

/// The paths misp-sim received, in order.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verdicts_come_back_with_their_summary_evidence_and_one_misp_request_each() {
    let harness = Harness::start().await;
    seed(&harness);
    let _runner = harness.start_runner("runner", &RunnerOptions::default());
    let driver = harness.driver().await;

    let (_, replies) = call_fn_misp(
        &driver,
        "misp_verdict",
        json!({"misp_attribute_value": IP, "misp_artifact_type": "IP Address"}),
        WAIT,
    )
    .await;
    assert_eq!(
        messages(&replies),
        [
            "Setting up connection to MISP",
            &format!(
                "Searching MISP for {IP} as ip-dst, ip-src, ip-dst|port, ip-src|port, domain|ip"
            ),
            "MISP has 1 attribute with this value in 1 event",
            "Verdict: malicious (score 100)",
            "Completed",
        ]
    );
    let results = completed_results(&replies);
    assert_eq!(results["success"], json!(true));
    let content = &results["content"];
    assert_eq!(content["verdict"], json!("malicious"));
    assert_eq!(content["score"], json!(100));
    assert_eq!(
        content["summary"],
        json!(format!(
            r#"MISP: malicious (score 100) — tag {EMOTET} on attribute {IP} in event 12 "Emotet C2 servers"; 2 sightings, last 2026-11-30; on no warninglist"#
        ))
    );
    assert_eq!(
        content["evidence"]["decided_by"]["rule"],
        json!("attribute_tag")
    );
    assert_eq!(content["events"][0]["info"], json!("Emotet C2 servers"));
    assert_eq!(results["inputs"]["misp_artifact_type"], json!("IP Address"));
    assert_eq!(misp_paths(&harness), ["/attributes/restSearch"]);
    let search = &harness.misp.requests()[0].body;
    assert_eq!(search["value"], json!(IP));
    assert_eq!(search["includeWarninglistHits"], json!(true));
    assert_eq!(search["includeDecayScore"], json!(true));

    harness.misp.clear_requests();
    let (_, replies) = call_fn_misp(
        &driver,
        "misp_verdict",
        json!({"misp_attribute_value": RESOLVER}),
        WAIT,
    )
    .await;
    let results = completed_results(&replies);
    assert_eq!(results["content"]["verdict"], json!("benign"));
    assert_eq!(
        results["content"]["summary"],
        json!(
            r#"MISP: benign (score 0) — on warninglist "List of known IPv4 public DNS resolvers" (entry 8.8.8.8/32); no sightings"#
        )
    );
    assert_eq!(
        messages(&replies)[3],
        "Looking 8.8.8.8 up in MISP's warninglists"
    );
    // No attribute with to_ids, so MISP's search said nothing of warninglists.
    assert_eq!(
        misp_paths(&harness),
        ["/attributes/restSearch", "/warninglists/checkValue"]
    );
    assert!(harness.misp.unexpected_requests().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_misp_is_an_error_reply_with_its_reason() {
    let harness = Harness::start().await;
    seed(&harness);
    let _runner = harness.start_runner("runner", &RunnerOptions::default());
    let driver = harness.driver().await;
    // A 503 is retried (the search is a read); the 500 that follows is not.
    harness.misp.fail_next(1, 503, None);
    harness.misp.fail_next(1, 500, None);
    let (_, replies) = call_fn_misp(
        &driver,
        "misp_verdict",
        json!({"misp_attribute_value": IP}),
        WAIT,
    )
    .await;
    let message = error_message(&replies);
    assert!(
        message.contains("An Internal Error Has Occurred."),
        "{message}"
    );
    assert_eq!(
        messages(&replies)[..2],
        [
            "Setting up connection to MISP",
            &format!("Searching MISP for {IP} as any type")
        ]
    );
    assert_eq!(
        misp_paths(&harness),
        ["/attributes/restSearch", "/attributes/restSearch"],
        "the search, then its one retry"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_verdict_rule_is_reported_at_start_up_and_fails_only_that_function() {
    let harness = Harness::start().await;
    seed(&harness);
    let config = harness.write_config("typo", &RunnerOptions::default());
    let text = std::fs::read_to_string(&config).expect("read app.config");
    let text = text.replacen(
        "[fn_misp]\n",
        "[fn_misp]\nverdict_suspicous_tags = misp-galaxy:threat-actor=*\n",
        1,
    );
    std::fs::write(&config, text).expect("write app.config");

    let (code, output) = run_to_completion(&config, &["selftest"]);
    assert_eq!(code, 1, "{output}");
    assert!(
        output.contains("config of misp_verdict: FAILED")
            && output.contains("verdict_suspicous_tags is not a verdict setting"),
        "{output}"
    );
    harness.misp.clear_requests();

    let runner =
        super::support::Runner::spawn(&config, &["run"], harness.dir.path().join("typo.log"));
    runner.wait_for_log(
        "has started successfully",
        std::time::Duration::from_secs(30),
    );
    let log = runner.log();
    assert!(
        log.contains("this function will fail until its settings are fixed")
            && log.contains("verdict_suspicous_tags"),
        "the problem is logged before any call:\n{log}"
    );
    let driver = harness.driver().await;
    let (_, replies) = call_fn_misp(
        &driver,
        "misp_verdict",
        json!({"misp_attribute_value": IP}),
        WAIT,
    )
    .await;
    let message = error_message(&replies);
    assert!(
        message.contains("[fn_misp] verdict_suspicous_tags is not a verdict setting; known: verdict_malicious_tags"),
        "{message}"
    );
    let (_, replies) = call_fn_misp(
        &driver,
        "misp_search_attribute",
        json!({"misp_attribute_value": IP}),
        WAIT,
    )
    .await;
    assert_eq!(final_reply(&replies).message_type, 0, "{replies:?}");
    assert_eq!(misp_paths(&harness), ["/events/restSearch"]);
}
