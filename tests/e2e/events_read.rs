//! `misp_get_event` and `misp_search_events` through ActiveMQ against misp-sim: what SOAR gets
//! back (progress, the final reply, its results) and what MISP received.

use serde_json::json;

use super::support::{Harness, RunnerOptions, call_fn_misp};
use super::{WAIT, completed_results, error_message, messages};

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs() as i64)
        .unwrap_or(0)
}

/// Event 12 (an attribute tagged with an ATT&CK technique, a file object, a galaxy cluster)
/// sharing a value with event 13 from CIRCL.
fn seed_related_events(harness: &Harness) {
    harness.misp.seed_event(json!({
        "id": "12", "info": "Phishing wave", "threat_level_id": "1",
        "Tag": [{"name": "tlp:amber"}],
        "Galaxy": [{"type": "mitre-attack-pattern", "name": "Attack Pattern", "GalaxyCluster": [
            {"type": "mitre-attack-pattern", "value": "Phishing - T1566",
             "tag_name": "misp-galaxy:mitre-attack-pattern=\"Phishing - T1566\""},
        ]}],
        "Attribute": [
            {"type": "ip-dst", "value": "203.0.113.9",
             "Tag": [{"name": "misp-galaxy:mitre-attack-pattern=\"PowerShell - T1059.001\""}],
             "Sighting": [{"type": "0", "date_sighting": "1700000000"},
                          {"type": "1", "date_sighting": "1700000100"}]},
            {"type": "domain", "value": "evil.example"},
        ],
        "Object": [{"name": "file", "Attribute": [
            {"type": "filename", "value": "invoice.exe", "object_relation": "filename"},
        ]}],
    }));
    harness.misp.seed_event(json!({
        "id": "13", "info": "Scan from the same host", "threat_level_id": "3",
        "published": true, "publish_timestamp": (now() - 5 * 86_400).to_string(),
        "Orgc": {"id": "7", "name": "CIRCL", "uuid": "55f6ea5e-2c60-40e5-964f-47a8950d210f"},
        "orgc_id": "7", "Tag": [{"name": "tlp:white"}],
        "Attribute": [{"type": "ip-src", "value": "203.0.113.9"}],
    }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_event_gives_techniques_related_events_and_counts_and_names_an_unknown_event() {
    let harness = Harness::start().await;
    seed_related_events(&harness);
    let _runner = harness.start_runner("runner", &RunnerOptions::default());
    let driver = harness.driver().await;

    let (_, replies) = call_fn_misp(
        &driver,
        "misp_get_event",
        json!({"misp_event_id": 12}),
        WAIT,
    )
    .await;
    assert_eq!(
        messages(&replies),
        [
            "Setting up connection to MISP",
            "Getting MISP event 12",
            "Got MISP event 12 with 3 attributes",
            "Completed",
        ]
    );
    let results = completed_results(&replies);
    assert_eq!(results["success"], json!(true));
    assert_eq!(results["content"]["Event"]["info"], json!("Phishing wave"));
    assert_eq!(
        results["attack_techniques"],
        json!([{"id": "T1059.001", "name": "PowerShell"}, {"id": "T1566", "name": "Phishing"}])
    );
    assert_eq!(results["truncated"], json!(false));
    assert_eq!(results["total_attributes"], json!(3));
    assert_eq!(results["related_events"][0]["id"], json!("13"));
    assert_eq!(results["related_events"][0]["orgc"], json!("CIRCL"));
    assert_eq!(results["related_events"][0]["threat_level_id"], json!("3"));
    let first = &results["content"]["Event"]["Attribute"][0];
    assert_eq!(
        first["sighting_counts"],
        json!({"sightings": 1, "false_positives": 1, "expirations": 0, "last_seen": 1_700_000_000})
    );
    assert!(first.get("Sighting").is_none(), "{first}");
    assert_eq!(
        results["content"]["Event"]["Object"][0]["Attribute"][0]["value"],
        json!("invoice.exe")
    );
    assert_eq!(results["inputs"]["misp_event_id"], json!(12));

    let (_, replies) = call_fn_misp(
        &driver,
        "misp_get_event",
        json!({"misp_event_id": 999}),
        WAIT,
    )
    .await;
    assert_eq!(
        error_message(&replies),
        "MISP has no event with ID 999, or the API key's user cannot see it"
    );
    assert_eq!(
        messages(&replies)[..2],
        ["Setting up connection to MISP", "Getting MISP event 999"]
    );

    let (_, replies) = call_fn_misp(&driver, "misp_get_event", json!({}), WAIT).await;
    assert_eq!(
        error_message(&replies),
        "input 'misp_event_id' or 'misp_event_uuid' is required but was not given"
    );

    let requests: Vec<(String, String)> = harness
        .misp
        .requests()
        .into_iter()
        .map(|request| (request.method, request.path))
        .collect();
    assert_eq!(
        requests,
        [
            ("GET".to_string(), "/events/view/12".to_string()),
            ("GET".to_string(), "/events/view/999".to_string()),
        ]
    );
    assert!(harness.misp.unexpected_requests().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_big_event_comes_back_capped_and_says_truncated() {
    let harness = Harness::start().await;
    let id: i64 = harness
        .misp
        .seed_big_event("big", 1_500)
        .parse()
        .expect("a numeric id");
    let _runner = harness.start_runner("runner", &RunnerOptions::default());
    let driver = harness.driver().await;

    let (_, replies) = call_fn_misp(
        &driver,
        "misp_get_event",
        json!({"misp_event_id": id}),
        WAIT,
    )
    .await;
    assert!(
        messages(&replies).contains(&format!(
            "MISP event {id} has 1500 attributes; returning the first 1000"
        )),
        "{:?}",
        messages(&replies)
    );
    let results = completed_results(&replies);
    assert_eq!(results["truncated"], json!(true));
    assert_eq!(results["total_attributes"], json!(1_500));
    let attributes = results["content"]["Event"]["Attribute"]
        .as_array()
        .expect("attributes");
    assert_eq!(attributes.len(), 1_000);
    assert_eq!(attributes[999]["comment"], json!("attribute 999"));

    let (_, replies) = call_fn_misp(
        &driver,
        "misp_get_event",
        json!({"misp_event_id": id, "misp_max_attributes": 10}),
        WAIT,
    )
    .await;
    let results = completed_results(&replies);
    assert_eq!(results["truncated"], json!(true));
    assert_eq!(
        results["content"]["Event"]["Attribute"]
            .as_array()
            .map(Vec::len),
        Some(10)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_events_lists_recent_events_with_a_value_and_refuses_a_search_without_filters() {
    let harness = Harness::start().await;
    seed_related_events(&harness);
    harness
        .misp
        .seed_event(json!({"id": "14", "info": "Long ago", "published": true,
        "publish_timestamp": (now() - 90 * 86_400).to_string(),
        "Attribute": [{"type": "ip-dst", "value": "203.0.113.9"}]}));
    let _runner = harness.start_runner("runner", &RunnerOptions::default());
    let driver = harness.driver().await;

    let (_, replies) = call_fn_misp(
        &driver,
        "misp_search_events",
        json!({"misp_attribute_value": "203.0.113.9", "misp_last": "30d",
               "misp_search_published": {"id": 5302, "name": "Yes"}}),
        WAIT,
    )
    .await;
    assert_eq!(
        messages(&replies),
        [
            "Setting up connection to MISP",
            "Searching MISP events (value=203.0.113.9, last=30d, published=yes), page 1 of up to 100 events",
            "Found 1 matching event, 1 on this page",
            "Completed",
        ]
    );
    let results = completed_results(&replies);
    assert_eq!(results["success"], json!(true));
    assert_eq!(
        results["content"],
        json!({"events": [{
            "id": "13", "uuid": results["content"]["events"][0]["uuid"], "info": "Scan from the same host",
            "date": results["content"]["events"][0]["date"], "threat_level_id": "3",
            "threat_level": "Low", "published": true, "org": misp_sim::ORG_NAME, "orgc": "CIRCL",
            "tags": ["tlp:white"], "attribute_count": 1,
        }], "total": 1, "page": 1, "limit": 100})
    );
    let search = harness
        .misp
        .requests()
        .pop()
        .expect("the search reached MISP");
    assert_eq!(search.path, "/events/restSearch");
    assert_eq!(
        search.body,
        json!({"returnFormat": "json", "metadata": true, "limit": 100, "page": 1,
               "value": "203.0.113.9", "last": "30d", "published": true})
    );

    let (_, replies) = call_fn_misp(
        &driver,
        "misp_search_events",
        json!({"misp_tags_all": "tlp:amber", "misp_limit": 5, "misp_page": 1}),
        WAIT,
    )
    .await;
    let results = completed_results(&replies);
    assert_eq!(results["content"]["events"][0]["id"], json!("12"));
    assert_eq!(results["content"]["total"], json!(1));

    harness.misp.clear_requests();
    let (_, replies) = call_fn_misp(
        &driver,
        "misp_search_events",
        json!({"misp_limit": 5, "misp_search_to_ids": {"id": 5304, "name": "Any"}}),
        WAIT,
    )
    .await;
    let message = error_message(&replies);
    assert!(
        message.starts_with("give at least one filter (misp_attribute_value, misp_attribute_type, misp_category, misp_tags_all, misp_tags_none, misp_org, misp_date_from, misp_date_to, misp_last,"),
        "{message}"
    );
    assert_eq!(harness.misp.request_count(), 0, "nothing reached MISP");
}
