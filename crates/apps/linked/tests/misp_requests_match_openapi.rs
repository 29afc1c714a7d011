//! Every request the fn_misp functions send, checked against MISP's own API document
//! (`openapi.yaml`, read at run time from `../shared/` beside the workspace; skipped with a
//! message when it is not there).
//!
//! Each registered MISP function runs through `Function::run` against misp-sim in at least
//! one scenario. Every request misp-sim recorded is matched to a path of the document and its
//! JSON body validated against that operation's request schema. Requests the document does
//! not describe must be listed in [`UNDOCUMENTED`], with the reason MISP serves them anyway.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use fn_misp::test_support::{self, ProgressLog};
use misp_sim::{MispSim, RecordedRequest, SimOptions};
use serde_json::{Map, Value, json};
use soar_apps as _;
use soar_core::Registry;

/// The document, relative to the workspace root.
const DOCUMENT: &str = "../shared/reference/misp/openapi/openapi.yaml";

/// Apps whose functions never talk to MISP.
const NOT_MISP_APPS: &[&str] = &["fn_urlscanio"];

/// A request the document does not describe (its path, its method, or a body it sends).
#[derive(Debug)]
struct Undocumented {
    method: &'static str,
    /// A path template in the document's notation.
    path: &'static str,
    why: &'static str,
}

static UNDOCUMENTED: &[Undocumented] = &[
    Undocumented {
        method: "POST",
        path: "/tags/attachTagToObject",
        why: "TagsController::attachTagToObject; PyMISP's tag() and the original fn_misp call it",
    },
    Undocumented {
        method: "POST",
        path: "/tags/removeTagFromObject",
        why: "TagsController::removeTagFromObject; PyMISP's untag() calls it",
    },
    Undocumented {
        method: "POST",
        path: "/events/alert/{eventId}",
        why: "EventsController::alert publishes and sends the e-mail alert; PyMISP's publish(alert=True) calls it",
    },
    Undocumented {
        method: "POST",
        path: "/attributes/delete/{attributeId}/{hard}",
        why: "AttributesController::delete($id, $hard), a hard delete; PyMISP's delete_attribute(hard=True) calls it",
    },
    Undocumented {
        method: "GET",
        path: "/objectTemplates/index",
        why: "ObjectTemplatesController::index, the active templates; PyMISP's object_templates() calls it",
    },
    Undocumented {
        method: "GET",
        path: "/objectTemplates/view/{objectTemplateId}",
        why: "ObjectTemplatesController::view, a template with its elements; PyMISP's get_object_template() calls it",
    },
    Undocumented {
        method: "POST",
        path: "/sightings/listSightings",
        why: "SightingsController::listSightings; PyMISP's sightings() and the original fn_misp call it",
    },
];

/// A request the document describes under another method or path of the same controller
/// action: it is checked against that operation (its body against that schema).
struct Alias {
    method: &'static str,
    path: &'static str,
    documented_method: &'static str,
    documented_path: &'static str,
    why: &'static str,
}

static ALIASES: &[Alias] = &[
    Alias {
        method: "POST",
        path: "/attributes/edit/{attributeId}",
        documented_method: "PUT",
        documented_path: "/attributes/edit/{attributeId}",
        why: "AttributesController::edit takes POST or PUT; PyMISP's update_attribute sends POST",
    },
    Alias {
        method: "POST",
        path: "/attributes/delete/{attributeId}",
        documented_method: "DELETE",
        documented_path: "/attributes/delete/{attributeId}",
        why: "AttributesController::delete takes POST or DELETE; PyMISP's delete_attribute sends POST",
    },
    Alias {
        method: "POST",
        path: "/sightings/add/{attributeId}",
        documented_method: "POST",
        documented_path: "/sightings/add",
        why: "SightingsController::add reads the same body (type, source, timestamp) with or without an attribute in the path, where the document gives the path form no body; PyMISP's add_sighting(sighting, attribute) sends one",
    },
];

/// A mismatch found in a function crate and reported to its author, not yet fixed: shown
/// on stderr instead of failing. An entry that no longer fails fails the test, so that it
/// goes once the crate is fixed.
struct Reported {
    function: &'static str,
    method: &'static str,
    path: &'static str,
    /// A part of the problem's text, such as the field (`at /eventid`).
    problem: &'static str,
}

static REPORTED: &[Reported] = &[
    // MISP 2.5 takes any set value but "only" as "deleted and live alike"
    // (MispAttribute::fetchAttributes), so `true` fits the document and finds the same.
    Reported {
        function: "misp_delete_attribute",
        method: "POST",
        path: "/attributes/restSearch",
        problem: "at /deleted: [0,1] is not of type \"boolean\"",
    },
];

/// A body MISP's controller takes although the document's schema refuses it (the document is
/// narrower than the server): shown on stderr instead of failing, when it is the request's only
/// problem. The scenarios that send one send little else.
struct DocumentGap {
    method: &'static str,
    path: &'static str,
    /// A part of the problem's text, as for [`Reported`].
    problem: &'static str,
    why: &'static str,
}

static DOCUMENT_GAPS: &[DocumentGap] = &[
    DocumentGap {
        method: "POST",
        path: "/events/restSearch",
        problem: "at /tags: {\"AND\"",
        why: "tags as {\"AND\": [...]}, the form EventsController reads (dissectArgs) for tags an event must all carry and PyMISP's build_complex_query writes; the document knows only a list, which MISP reads as any-of",
    },
    DocumentGap {
        method: "POST",
        path: "/attributes/restSearch",
        problem: "at /type: [",
        why: "several types as a list, which set_filter_type reads (convert_filters: any of them) and PyMISP's search(type_attribute=[...]) sends; the document knows one type only",
    },
    DocumentGap {
        method: "POST",
        path: "/events/restSearch",
        problem: "at /org: \"1\" is valid under more than one of the schemas listed in the 'oneOf' keyword",
        why: "an organisation id as digits fits both branches of the document's oneOf (id, name); set_filter_org takes it",
    },
    DocumentGap {
        method: "POST",
        path: "/attributes/restSearch",
        problem: "at /value: [",
        why: "several values as a list, which set_filter_value reads (convert_filters: any of them) and PyMISP's search(value=[...]) sends; the document knows one value only",
    },
    DocumentGap {
        method: "POST",
        path: "/attributes/add/{eventId}",
        problem: "at /: [{",
        why: "a list of attributes, which AttributesController::add saves one by one (answering the saved ones and errors per attribute_<index>) and PyMISP's add_attribute(event, [attributes]) sends; the document knows one attribute only",
    },
];

/// Controllers that take their body either bare or wrapped in the model's name
/// (`{"Event": {…}}`, as PyMISP sends it); the document describes the bare form, so the
/// wrapper is taken off before validation, as the controller does.
const MODEL_WRAPPERS: &[(&str, &str)] = &[
    ("/events/add", "Event"),
    ("/events/edit/{eventId}", "Event"),
    ("/attributes/add/{eventId}", "Attribute"),
    ("/attributes/edit/{attributeId}", "Attribute"),
    ("/sightings/add", "Sighting"),
];

/// One run of a function: what it exercises, and how to seed misp-sim and build its inputs.
struct Scenario {
    function: &'static str,
    case: &'static str,
    /// Seeds the simulator and returns the function's inputs.
    setup: fn(&MispSim) -> Value,
}

const SCENARIOS: &[Scenario] = &[
    Scenario {
        function: "misp_create_event",
        case: "every field set",
        setup: |_| {
            json!({
                "misp_event_name": "Phishing wave",
                "misp_distribution": 0,
                "misp_threat_level": 2,
                "misp_analysis_level": 1,
            })
        },
    },
    Scenario {
        function: "misp_create_attribute",
        case: "an ip-dst in event 5",
        setup: |sim| {
            sim.seed_event(json!({"id": "5", "info": "five"}));
            json!({
                "misp_attribute_type": "ip-dst",
                "misp_attribute_value": "198.51.100.7",
                "misp_event_id": 5,
            })
        },
    },
    Scenario {
        function: "misp_create_sighting",
        case: "a value MISP holds",
        setup: |sim| {
            seed_event_with_attribute(sim);
            json!({"misp_sighting": "198.51.100.7"})
        },
    },
    Scenario {
        function: "misp_create_tag",
        case: "on an event",
        setup: |sim| {
            seed_event_with_attribute(sim);
            json!({
                "misp_tag_type": {"id": 3963, "name": "Event"},
                "misp_tag_name": "tlp:amber",
                "misp_event_id": 5,
            })
        },
    },
    Scenario {
        function: "misp_create_tag",
        case: "on an attribute",
        setup: |sim| {
            seed_event_with_attribute(sim);
            json!({
                "misp_tag_type": {"id": 3964, "name": "Attribute"},
                "misp_tag_name": "tlp:amber",
                "misp_event_id": 5,
                "misp_attribute_value": "198.51.100.7",
            })
        },
    },
    Scenario {
        function: "misp_search_attribute",
        case: "a value MISP holds",
        setup: |sim| {
            seed_event_with_attribute(sim);
            json!({"misp_attribute_value": "198.51.100.7"})
        },
    },
    Scenario {
        function: "misp_sighting_list",
        case: "an event with a sighting",
        setup: |sim| {
            seed_event_with_attribute(sim);
            json!({"misp_event_id": 5})
        },
    },
    Scenario {
        function: "misp_get_event",
        case: "by id, capped",
        setup: |sim| {
            seed_event_with_attribute(sim);
            json!({"misp_event_id": 5, "misp_max_attributes": 10})
        },
    },
    Scenario {
        function: "misp_get_event",
        case: "by UUID",
        setup: |sim| {
            seed_event_with_attribute(sim);
            json!({"misp_event_uuid": EVENT_UUID})
        },
    },
    Scenario {
        function: "misp_search_events",
        case: "every filter but tags that must all be present",
        setup: |sim| {
            seed_event_with_attribute(sim);
            json!({
                "misp_attribute_value": "198.51.100.7",
                "misp_attribute_type": "ip-dst",
                "misp_category": {"id": 5008, "name": "Network activity"},
                "misp_tags_none": "false-positive, tlp:red",
                "misp_org": "ORGNAME",
                "misp_date_from": 1_704_067_200_000_i64,
                "misp_date_to": 1_893_456_000_000_i64,
                "misp_last": "30d",
                "misp_search_published": {"id": 5303, "name": "No"},
                "misp_search_to_ids": {"id": 5305, "name": "Yes"},
                "misp_search_threat_level": {"id": 5310, "name": "Undefined"},
                "misp_limit": 10,
                "misp_page": 2,
            })
        },
    },
    // The next two send only what DOCUMENT_GAPS names, so that a gap hides nothing else.
    Scenario {
        function: "misp_search_events",
        case: "tags that must all be present",
        setup: |sim| {
            seed_event_with_attribute(sim);
            json!({"misp_tags_all": "tlp:amber, tlp:green"})
        },
    },
    Scenario {
        function: "misp_search_events",
        case: "an organisation by id",
        setup: |sim| {
            seed_event_with_attribute(sim);
            json!({"misp_org": "1"})
        },
    },
    Scenario {
        function: "misp_publish_event",
        case: "by id, with the e-mail alert",
        setup: |sim| {
            seed_event_with_attribute(sim);
            json!({"misp_event_id": 5, "misp_publish_alert": true})
        },
    },
    Scenario {
        function: "misp_publish_event",
        case: "by UUID, without the alert",
        setup: |sim| {
            seed_event_with_attribute(sim);
            json!({"misp_event_uuid": EVENT_UUID, "misp_publish_alert": false})
        },
    },
    Scenario {
        function: "misp_remove_tag",
        case: "from an event by id",
        setup: |sim| {
            seed_event_with_attribute(sim);
            json!({
                "misp_tag_type": {"id": 3963, "name": "Event"},
                "misp_tag_name": "tlp:amber",
                "misp_event_id": 5,
            })
        },
    },
    Scenario {
        function: "misp_remove_tag",
        case: "from an attribute by value in an event",
        setup: |sim| {
            seed_event_with_attribute(sim);
            json!({
                "misp_tag_type": {"id": 3964, "name": "Attribute"},
                "misp_tag_name": "tlp:green",
                "misp_event_id": 5,
                "misp_attribute_value": "198.51.100.7",
            })
        },
    },
    Scenario {
        function: "misp_remove_tag",
        case: "from an attribute by UUID",
        setup: |sim| {
            seed_event_with_attribute(sim);
            json!({
                "misp_tag_type": {"id": 3964, "name": "Attribute"},
                "misp_tag_name": "tlp:green",
                "misp_attribute_uuid": ATTRIBUTE_UUID,
            })
        },
    },
    Scenario {
        function: "misp_update_attribute",
        case: "to_ids and comment by id",
        setup: |sim| {
            seed_event_with_attribute(sim);
            json!({"misp_attribute_id": 40, "misp_to_ids": false, "misp_comment": "benign: CDN"})
        },
    },
    Scenario {
        function: "misp_update_attribute",
        case: "seen times and distribution by UUID",
        setup: |sim| {
            seed_event_with_attribute(sim);
            json!({
                "misp_attribute_uuid": ATTRIBUTE_UUID,
                "misp_first_seen": 1_709_288_430_123_i64,
                "misp_last_seen": 1_709_374_830_000_i64,
                "misp_distribution": 0,
            })
        },
    },
    Scenario {
        function: "misp_update_attribute",
        case: "category by value in an event",
        setup: |sim| {
            seed_event_with_attribute(sim);
            json!({
                "misp_event_id": 5,
                "misp_attribute_value": "198.51.100.7",
                "misp_category": {"id": 5004, "name": "Payload delivery"},
            })
        },
    },
    Scenario {
        function: "misp_add_sighting",
        case: "a value, with the defaults",
        setup: |sim| {
            seed_event_with_attribute(sim);
            json!({"misp_sighting": "198.51.100.7"})
        },
    },
    Scenario {
        function: "misp_add_sighting",
        case: "a false positive of an attribute by id, with a source and a time",
        setup: |sim| {
            seed_event_with_attribute(sim);
            json!({
                "misp_attribute_id": 40,
                "misp_sighting_type": {"id": 5102, "name": "False positive"},
                "misp_sighting_source": "proxy logs",
                "misp_sighting_time": 1_709_288_430_000_i64,
            })
        },
    },
    Scenario {
        function: "misp_add_sighting",
        case: "an expiration of an attribute by UUID",
        setup: |sim| {
            seed_event_with_attribute(sim);
            json!({
                "misp_attribute_uuid": ATTRIBUTE_UUID,
                "misp_sighting_type": {"id": 5103, "name": "Expiration"},
            })
        },
    },
    Scenario {
        function: "misp_delete_attribute",
        case: "a soft delete by id",
        setup: |sim| {
            seed_event_with_attribute(sim);
            json!({"misp_attribute_id": 40})
        },
    },
    Scenario {
        function: "misp_delete_attribute",
        case: "a hard delete by UUID",
        setup: |sim| {
            seed_event_with_attribute(sim);
            json!({"misp_attribute_uuid": ATTRIBUTE_UUID, "misp_hard_delete": true})
        },
    },
    Scenario {
        function: "misp_delete_attribute",
        case: "a soft delete by value in an event",
        setup: |sim| {
            seed_event_with_attribute(sim);
            json!({"misp_event_id": 5, "misp_attribute_value": "198.51.100.7"})
        },
    },
    // Sends the search without types (and, since MISP holds nothing, checkValue), so that
    // the next scenario's gap hides nothing else.
    Scenario {
        function: "misp_verdict",
        case: "a value MISP does not hold, then looked up in warninglists",
        setup: |sim| {
            seed_event_with_attribute(sim);
            json!({"misp_attribute_value": "203.0.113.77"})
        },
    },
    Scenario {
        function: "misp_verdict",
        case: "an IP address artifact, its MISP types as a list",
        setup: |sim| {
            seed_event_with_attribute(sim);
            json!({"misp_attribute_value": "198.51.100.7", "misp_artifact_type": "IP Address"})
        },
    },
    Scenario {
        function: "misp_check_warninglist",
        case: "several values, one per line",
        setup: |_| json!({"misp_values": "198.51.100[.]7\n8.8.8.8\nevil.example"}),
    },
    Scenario {
        function: "misp_add_attributes",
        case: "a pasted batch with the batch settings, one value already in the event",
        setup: |sim| {
            seed_event_with_attribute(sim);
            json!({
                "misp_event_id": 5,
                "misp_values": "198.51.100[.]7\nhxxp://evil[.]example/a\nevil.example\nd41d8cd98f00b204e9800998ecf8427e",
                "misp_to_ids": true,
                "misp_comment": "from the report",
                "misp_category": {"id": 5008, "name": "Network activity"},
            })
        },
    },
    Scenario {
        function: "misp_add_object",
        case: "a url object with a comment in event 5",
        setup: |sim| {
            seed_event_with_attribute(sim);
            json!({
                "misp_event_id": 5,
                "misp_object_template": "url",
                "misp_object_attributes": "{\"url\": \"https://bad.example/login\", \"host\": \"bad.example\", \"ip\": [\"192.0.2.1\", \"192.0.2.2\"]}",
                "misp_comment": "from SOAR",
            })
        },
    },
];

const EVENT_UUID: &str = "5f0c1e2a-7b3d-4c8e-9a1f-2d3e4f5a6b7c";
const ATTRIBUTE_UUID: &str = "0b8d2c4e-6f1a-4e3b-8c5d-7a9e1f2b3c4d";

/// Event 5 ([`EVENT_UUID`], unpublished, tagged `tlp:amber`) holding `198.51.100.7`
/// (attribute 40, [`ATTRIBUTE_UUID`], ip-dst, one sighting, tagged `tlp:green`).
fn seed_event_with_attribute(sim: &MispSim) {
    sim.seed_event(json!({
        "id": "5",
        "uuid": EVENT_UUID,
        "info": "five",
        "published": false,
        "Tag": [{"name": "tlp:amber"}],
        "Attribute": [{
            "id": "40",
            "uuid": ATTRIBUTE_UUID,
            "type": "ip-dst",
            "value": "198.51.100.7",
            "Tag": [{"name": "tlp:green"}],
            "Sighting": [{"source": "IBM QRadar SOAR", "date_sighting": "1701370203"}],
        }],
    }));
}

#[tokio::test]
async fn every_request_body_matches_misps_api_document() {
    let Some(document) = ApiDocument::load_or_skip("every_request_body_matches_misps_api_document")
    else {
        return;
    };
    let registry = Registry::from_inventory().expect("no two functions share a name");
    let mut problems = Vec::new();
    for function in registry.functions() {
        let definition = function.definition();
        let app = definition.app.name;
        if NOT_MISP_APPS.contains(&app) {
            continue;
        }
        if app != fn_misp::APP.name {
            problems.push(format!(
                "{} belongs to app {app}: add a scenario if it talks to MISP, or the app to NOT_MISP_APPS",
                definition.name
            ));
        } else if !SCENARIOS
            .iter()
            .any(|scenario| scenario.function == definition.name)
        {
            problems.push(format!(
                "{} has no scenario: add one to SCENARIOS so that its requests are checked",
                definition.name
            ));
        }
    }

    let mut checked = 0;
    let mut undocumented_used: Vec<&Undocumented> = Vec::new();
    let mut reported_seen: Vec<&Reported> = Vec::new();
    for scenario in SCENARIOS {
        let label = format!("{} ({})", scenario.function, scenario.case);
        let function = match registry.get(scenario.function) {
            Ok(function) => function,
            Err(error) => {
                problems.push(format!("{label}: {error}"));
                continue;
            }
        };
        let sim = MispSim::start(SimOptions::default()).await;
        let inputs = (scenario.setup)(&sim);
        let log = ProgressLog::new();
        let context = test_support::context(sim.url(), sim.key(), &log);
        if let Err(error) = function.run(&context, &test_support::inputs(inputs)).await {
            problems.push(format!("{label}: the run failed: {error}"));
        }
        let requests = sim.requests();
        if requests.is_empty() {
            problems.push(format!("{label}: sent no request to check"));
        }
        let mut matched = Vec::new();
        for request in &requests {
            if !request.known_endpoint {
                problems.push(format!(
                    "{label}: {} {} is not a misp-sim endpoint",
                    request.method, request.path
                ));
            }
            match document.check(request) {
                Ok(Checked::Validated) => {
                    checked += 1;
                    matched.push(format!("{} {}", request.method, request.path));
                }
                Ok(Checked::Undocumented(entry)) => {
                    if !undocumented_used
                        .iter()
                        .any(|used| std::ptr::eq(*used, entry))
                    {
                        undocumented_used.push(entry);
                    }
                }
                Err(problem) => {
                    let reported = REPORTED.iter().find(|entry| {
                        entry.function == scenario.function
                            && entry.method == request.method
                            && PathTemplate::parse(entry.path).matches(&request.path)
                            && problem.contains(entry.problem)
                    });
                    let message =
                        format!("{label}: {} {}: {problem}", request.method, request.path);
                    // Only a request whose one problem is a known gap of the document: one
                    // place in the body, however many of the schema's branches it fails.
                    let only_problem = problem.split("\n    body:").next().is_some_and(|errors| {
                        let mut places = errors
                            .split("at /")
                            .skip(1)
                            .map(|error| error.split(':').next());
                        let first = places.next();
                        places.all(|place| place == first.flatten())
                    });
                    let gap = DOCUMENT_GAPS.iter().find(|gap| {
                        only_problem
                            && gap.method == request.method
                            && PathTemplate::parse(gap.path).matches(&request.path)
                            && problem.contains(gap.problem)
                    });
                    match (reported, gap) {
                        (Some(entry), _) => {
                            eprintln!("reported, not yet fixed: {message}");
                            reported_seen.push(entry);
                        }
                        (None, Some(gap)) => {
                            eprintln!(
                                "the document is narrower than MISP ({}): {message}",
                                gap.why
                            );
                        }
                        (None, None) => problems.push(message),
                    }
                }
            }
        }
        if matched.is_empty() {
            matched.push("nothing (undocumented paths only)".to_string());
        }
        eprintln!("{label}: matched the document: {}", matched.join(", "));
    }
    for entry in UNDOCUMENTED {
        if undocumented_used
            .iter()
            .any(|used| std::ptr::eq(*used, entry))
        {
            eprintln!(
                "not in the document, so not checked: {} {} ({})",
                entry.method, entry.path, entry.why
            );
        } else {
            eprintln!(
                "note: no scenario sent {} {} (listed in UNDOCUMENTED)",
                entry.method, entry.path
            );
        }
    }
    for alias in ALIASES {
        eprintln!(
            "{} {} checked as the document's {} {}: {}",
            alias.method, alias.path, alias.documented_method, alias.documented_path, alias.why
        );
    }
    for entry in REPORTED {
        if !reported_seen.iter().any(|seen| std::ptr::eq(*seen, entry)) {
            problems.push(format!(
                "REPORTED lists {} {} {} ({}), which no longer fails: remove the entry",
                entry.function, entry.method, entry.path, entry.problem
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "requests that MISP's API document does not accept ({checked} matched it):\n  {}",
        problems.join("\n  ")
    );
    assert!(checked > 0, "no request was checked against the document");
}

/// The checker itself: a body the document refuses fails with the field and the reason, an
/// unknown path fails, and a listed one passes unchecked.
#[test]
fn the_checker_refuses_what_the_document_refuses() {
    let Some(document) = ApiDocument::load_or_skip("the_checker_refuses_what_the_document_refuses")
    else {
        return;
    };
    let good = request(
        "POST",
        "/events/add",
        json!({"Event": {"info": "x", "distribution": "0", "threat_level_id": "2"}}),
    );
    assert!(
        matches!(document.check(&good), Ok(Checked::Validated)),
        "{:?}",
        document.check(&good).err()
    );

    let bad_enum = request(
        "POST",
        "/events/add",
        json!({"Event": {"info": "x", "distribution": "9"}}),
    );
    let problem = document
        .check(&bad_enum)
        .expect_err("distribution 9 is no level");
    assert!(problem.contains("/distribution"), "{problem}");

    let bad_type = request(
        "POST",
        "/attributes/restSearch",
        json!({"value": "x", "limit": "many", "returnFormat": "json"}),
    );
    let problem = document.check(&bad_type).expect_err("a limit is a number");
    assert!(problem.contains("/limit"), "{problem}");

    // `nullable: true` lets a null through where the type alone would not.
    let nullable = request(
        "POST",
        "/attributes/restSearch",
        json!({"value": "x", "limit": null}),
    );
    assert!(
        matches!(document.check(&nullable), Ok(Checked::Validated)),
        "{:?}",
        document.check(&nullable).err()
    );

    // POST where the document has PUT, checked against PUT's schema.
    let aliased = request("POST", "/attributes/edit/40", json!({"to_ids": "yes"}));
    let problem = document.check(&aliased).expect_err("to_ids is a boolean");
    assert!(problem.contains("/to_ids"), "{problem}");
    // A path the document gives no body, checked against another path's schema.
    let borrowed = request(
        "POST",
        "/sightings/add/40",
        json!({"timestamp": 1_700_000_000}),
    );
    let problem = document
        .check(&borrowed)
        .expect_err("a timestamp is a digit string");
    assert!(problem.contains("/timestamp"), "{problem}");

    let unknown = request("POST", "/events/frobnicate/5", json!({}));
    let problem = document.check(&unknown).expect_err("no such path");
    assert!(problem.contains("not in the document"), "{problem}");

    let wrong_method = request("GET", "/events/add", Value::Null);
    let problem = document.check(&wrong_method).expect_err("add is a POST");
    assert!(problem.contains("POST"), "{problem}");

    let listed = request(
        "POST",
        "/tags/attachTagToObject",
        json!({"uuid": "x", "tag": "t", "local": false}),
    );
    assert!(matches!(
        document.check(&listed),
        Ok(Checked::Undocumented(entry)) if entry.path == "/tags/attachTagToObject"
    ));
}

#[test]
fn path_templates_match_whole_segments_and_named_parameters() {
    let template = PathTemplate::parse("/events/addTag/{eventId}/{tagId}/local:{local}");
    assert!(template.matches("/events/addTag/5/12/local:1"));
    assert!(!template.matches("/events/addTag/5/12/1"));
    assert!(!template.matches("/events/addTag/5/12"));
    assert!(!template.matches("/events/addTag/5//local:1"));
    assert!(PathTemplate::parse("/events/view/{eventId}").matches("/events/view/5"));
    assert!(!PathTemplate::parse("/events/view/{eventId}").matches("/events/view/5/6"));
}

#[test]
fn openapi_nullable_becomes_a_null_type_and_ref_siblings_go() {
    let mut schema = json!({
        "type": "string",
        "nullable": true,
        "enum": ["a"],
        "properties": {
            "nullable": {"$ref": "#/x", "description": "ignored", "type": "integer"},
        },
    });
    to_json_schema(&mut schema);
    assert_eq!(
        schema,
        json!({
            "type": ["string", "null"],
            "enum": ["a", null],
            "properties": {"nullable": {"$ref": "#/x"}},
        })
    );
}

fn request(method: &str, path: &str, body: Value) -> RecordedRequest {
    RecordedRequest {
        sequence: 0,
        method: method.to_string(),
        path: path.to_string(),
        query: None,
        headers: Default::default(),
        body,
        status: Some(200),
        known_endpoint: true,
    }
}

/// How a request fared against the document.
#[derive(Debug)]
enum Checked {
    /// Matched a documented operation; its body (if any) is valid.
    Validated,
    /// Listed in [`UNDOCUMENTED`].
    Undocumented(&'static Undocumented),
}

/// MISP's API document, its schemas turned into JSON Schema.
struct ApiDocument {
    /// The whole document, as JSON: request schemas' `$ref`s resolve inside it.
    root: Value,
    operations: Vec<Operation>,
}

/// One path and method of the document.
struct Operation {
    template: PathTemplate,
    method: String,
    body: RequestBody,
}

/// What an operation takes as its body.
enum RequestBody {
    None,
    Json {
        schema: Value,
        required: bool,
    },
    /// Only other media types (a file upload, for instance).
    NotJson,
}

impl ApiDocument {
    /// The document when it is there; otherwise prints why `test` skipped and gives `None`.
    fn load_or_skip(test: &str) -> Option<ApiDocument> {
        let path = document_path();
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(error) => {
                // Straight to the process's stderr: the test harness captures `eprintln!` of
                // a passing test, and a skip must show in a plain `cargo test`.
                let _ = writeln!(
                    std::io::stderr(),
                    "skipped: {test}: MISP's API document is not at {} ({error}); it is read from ../shared/ beside the workspace",
                    path.display()
                );
                return None;
            }
        };
        match ApiDocument::parse(&text) {
            Ok(document) => Some(document),
            Err(error) => panic!(
                "{} is not a usable OpenAPI document: {error}",
                path.display()
            ),
        }
    }

    fn parse(text: &str) -> Result<ApiDocument, String> {
        let mut root = yaml_to_json(text)?;
        to_json_schema(&mut root);
        let paths = root
            .get("paths")
            .and_then(Value::as_object)
            .ok_or("no paths")?;
        let mut operations = Vec::new();
        for (path, item) in paths {
            let Some(item) = item.as_object() else {
                continue;
            };
            for (method, operation) in item {
                if !is_http_method(method) {
                    continue;
                }
                let body = match operation.get("requestBody") {
                    None => RequestBody::None,
                    Some(body) => {
                        let body = resolve(&root, body)?;
                        match body.pointer("/content/application~1json/schema") {
                            Some(schema) => RequestBody::Json {
                                schema: schema.clone(),
                                required: body["required"] == json!(true),
                            },
                            None => RequestBody::NotJson,
                        }
                    }
                };
                operations.push(Operation {
                    template: PathTemplate::parse(path),
                    method: method.to_ascii_uppercase(),
                    body,
                });
            }
        }
        Ok(ApiDocument { root, operations })
    }

    /// Matches `request` to an operation of the document, or to [`UNDOCUMENTED`], and
    /// validates its body; the error says what does not match.
    fn check(&self, request: &RecordedRequest) -> Result<Checked, String> {
        let listed = UNDOCUMENTED.iter().find(|entry| {
            entry.method == request.method && PathTemplate::parse(entry.path).matches(&request.path)
        });
        if let Some(entry) = listed {
            return Ok(Checked::Undocumented(entry));
        }
        let on_path: Vec<&Operation> = self
            .operations
            .iter()
            .filter(|operation| operation.template.matches(&request.path))
            .collect();
        // The most specific template wins (`/events/index` over `/events/{x}`).
        let best = on_path
            .iter()
            .map(|operation| operation.template.literal_length)
            .max();
        let on_path: Vec<&Operation> = on_path
            .into_iter()
            .filter(|operation| Some(operation.template.literal_length) == best)
            .collect();
        let alias = ALIASES.iter().find(|alias| {
            alias.method == request.method && PathTemplate::parse(alias.path).matches(&request.path)
        });
        if let Some(alias) = alias {
            let operation = self
                .operations
                .iter()
                .find(|operation| {
                    operation.method == alias.documented_method
                        && operation.template.text == alias.documented_path
                })
                .ok_or_else(|| {
                    format!(
                        "ALIASES names {} {}, which the document does not have",
                        alias.documented_method, alias.documented_path
                    )
                })?;
            return self.check_body(operation, &request.body);
        }
        let Some(operation) = on_path
            .iter()
            .find(|operation| operation.method == request.method)
        else {
            if on_path.is_empty() {
                return Err(
                    "the path is not in the document; if MISP serves it, list it in UNDOCUMENTED with the reason"
                        .to_string(),
                );
            }
            let methods: Vec<&str> = on_path
                .iter()
                .map(|operation| operation.method.as_str())
                .collect();
            return Err(format!(
                "the document has {} only as {}",
                on_path[0].template.text,
                methods.join(", ")
            ));
        };
        self.check_body(operation, &request.body)
    }

    /// Checks a request's body (`Null` when it sent none) against `operation`'s.
    fn check_body(&self, operation: &Operation, body: &Value) -> Result<Checked, String> {
        let template = operation.template.text.as_str();
        match (&operation.body, body) {
            (RequestBody::None | RequestBody::NotJson, Value::Null) => Ok(Checked::Validated),
            (RequestBody::None, _) => Err(format!(
                "sends a body, but the document gives {template} none"
            )),
            (RequestBody::NotJson, _) => Err(format!(
                "sends JSON, but the document's body for {template} is not JSON"
            )),
            (RequestBody::Json { required, .. }, Value::Null) if *required => Err(format!(
                "sends no body, but the document requires one for {template}"
            )),
            (RequestBody::Json { .. }, Value::Null) => Ok(Checked::Validated),
            (RequestBody::Json { schema, .. }, body) => {
                let body = unwrap_model(template, body);
                self.validate(schema, body)
                    .map(|()| Checked::Validated)
                    .map_err(|errors| {
                        format!(
                            "the body does not match the request schema of {template}: {}\n    body: {body}",
                            errors.join("; ")
                        )
                    })
            }
        }
    }

    /// Validates `body` against `schema`, whose `$ref`s point into the document.
    fn validate(&self, schema: &Value, body: &Value) -> Result<(), Vec<String>> {
        let mut rooted = Map::new();
        rooted.insert("allOf".to_string(), json!([schema]));
        rooted.insert("components".to_string(), self.root["components"].clone());
        let validator = jsonschema::options()
            .with_draft(jsonschema::Draft::Draft202012)
            .should_validate_formats(true)
            .build(&Value::Object(rooted))
            .map_err(|error| vec![format!("the schema does not compile: {error}")])?;
        let errors: Vec<String> = validator
            .iter_errors(body)
            .map(|error| {
                let at = error.instance_path().to_string();
                let at = if at.is_empty() { "/".to_string() } else { at };
                format!("at {at}: {error}")
            })
            .collect();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}

/// `{"Event": {…}}` → `{…}` where the controller accepts both.
fn unwrap_model<'a>(template: &str, body: &'a Value) -> &'a Value {
    let wrapper = MODEL_WRAPPERS
        .iter()
        .find(|(path, _)| *path == template)
        .map(|(_, model)| *model);
    match (wrapper, body.as_object()) {
        (Some(model), Some(fields)) if fields.len() == 1 => fields.get(model).unwrap_or(body),
        _ => body,
    }
}

/// The document's path, from the workspace root (two folders above this crate's parent).
fn document_path() -> PathBuf {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../..");
    let workspace = workspace.canonicalize().unwrap_or(workspace);
    workspace.join(DOCUMENT)
}

fn is_http_method(name: &str) -> bool {
    matches!(
        name,
        "get" | "put" | "post" | "delete" | "options" | "head" | "patch" | "trace"
    )
}

/// Follows a `$ref` to a component that is not a schema (a request body).
fn resolve(root: &Value, value: &Value) -> Result<Value, String> {
    match value.get("$ref").and_then(Value::as_str) {
        Some(reference) => {
            let pointer = reference
                .strip_prefix('#')
                .ok_or_else(|| format!("{reference} is not a local reference"))?;
            let target = root
                .pointer(pointer)
                .ok_or_else(|| format!("{reference} points nowhere"))?;
            resolve(root, target)
        }
        None => Ok(value.clone()),
    }
}

/// Turns OpenAPI 3.0 schema objects into JSON Schema, in place, across the document:
/// `nullable: true` adds `null` to the `type` (and to an `enum`), and has no effect without a
/// `type` (OpenAPI 3.0.3); a `$ref`'s siblings are ignored in OpenAPI 3.0, so they go.
fn to_json_schema(value: &mut Value) {
    match value {
        Value::Object(fields) => {
            if fields.contains_key("$ref") {
                fields.retain(|name, _| name == "$ref");
                return;
            }
            if fields.get("nullable").is_some_and(Value::is_boolean) {
                let nullable = fields.remove("nullable") == Some(Value::Bool(true));
                if nullable && let Some(Value::String(kind)) = fields.get("type").cloned() {
                    fields.insert("type".to_string(), json!([kind, "null"]));
                    if let Some(Value::Array(values)) = fields.get_mut("enum")
                        && !values.contains(&Value::Null)
                    {
                        values.push(Value::Null);
                    }
                }
            }
            for item in fields.values_mut() {
                to_json_schema(item);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(to_json_schema),
        _ => {}
    }
}

/// A path of the document, such as `/events/addTag/{eventId}/{tagId}/local:{local}`
/// (CakePHP named parameters are written into the path).
#[derive(Debug)]
struct PathTemplate {
    text: String,
    segments: Vec<TemplateSegment>,
    /// The characters outside parameters: the more, the more specific the template.
    literal_length: usize,
}

/// One `/`-separated part: `prefix{parameter}suffix`, or only literal text.
#[derive(Debug)]
struct TemplateSegment {
    prefix: String,
    /// `Some(suffix)` when the segment holds a parameter.
    parameter_suffix: Option<String>,
}

impl PathTemplate {
    fn parse(text: &str) -> PathTemplate {
        let segments: Vec<TemplateSegment> = text
            .split('/')
            .filter(|part| !part.is_empty())
            .map(|part| match part.split_once('{') {
                Some((prefix, rest)) => {
                    let (_, suffix) = rest
                        .split_once('}')
                        .unwrap_or_else(|| panic!("unclosed parameter in {text}"));
                    assert!(
                        !suffix.contains('{'),
                        "{text}: two parameters in one segment are not supported"
                    );
                    TemplateSegment {
                        prefix: prefix.to_string(),
                        parameter_suffix: Some(suffix.to_string()),
                    }
                }
                None => TemplateSegment {
                    prefix: part.to_string(),
                    parameter_suffix: None,
                },
            })
            .collect();
        let literal_length = segments
            .iter()
            .map(|segment| {
                segment.prefix.len() + segment.parameter_suffix.as_ref().map_or(0, String::len)
            })
            .sum();
        PathTemplate {
            text: text.to_string(),
            segments,
            literal_length,
        }
    }

    fn matches(&self, path: &str) -> bool {
        let parts: Vec<&str> = path.strip_prefix('/').unwrap_or(path).split('/').collect();
        parts.len() == self.segments.len()
            && parts.iter().zip(&self.segments).all(|(part, segment)| {
                match &segment.parameter_suffix {
                    None => *part == segment.prefix,
                    Some(suffix) => part
                        .strip_prefix(segment.prefix.as_str())
                        .and_then(|rest| rest.strip_suffix(suffix.as_str()))
                        .is_some_and(|value| !value.is_empty()),
                }
            })
    }
}

/// The document's YAML as JSON. Mapping keys become strings; the document repeats a key
/// in one place (`default` under `/attributes/describeTypes`), so the last one is kept.
fn yaml_to_json(text: &str) -> Result<Value, String> {
    use saphyr::{Yaml, YamlLoader};
    let mut loader: YamlLoader<'_, Yaml<'_>> = YamlLoader::default();
    loader.allow_duplicate_keys(true);
    saphyr_parser_load(text, &mut loader)?;
    if let Some(error) = loader.error() {
        return Err(error.to_string());
    }
    let documents = loader.into_documents();
    let document = documents.first().ok_or("an empty YAML file")?;
    yaml_node_to_json(document)
}

fn saphyr_parser_load<'input>(
    text: &'input str,
    loader: &mut saphyr::YamlLoader<'input, saphyr::Yaml<'input>>,
) -> Result<(), String> {
    let mut parser = saphyr_parser::Parser::new_from_str(text);
    parser.load(loader, true).map_err(|error| error.to_string())
}

fn yaml_node_to_json(node: &saphyr::Yaml<'_>) -> Result<Value, String> {
    use saphyr::{Scalar, Yaml};
    Ok(match node {
        Yaml::Value(Scalar::Null) => Value::Null,
        Yaml::Value(Scalar::Boolean(flag)) => Value::Bool(*flag),
        Yaml::Value(Scalar::Integer(number)) => json!(number),
        Yaml::Value(Scalar::FloatingPoint(number)) => json!(number.0),
        Yaml::Value(Scalar::String(text)) => Value::String(text.to_string()),
        Yaml::Sequence(items) => Value::Array(
            items
                .iter()
                .map(yaml_node_to_json)
                .collect::<Result<_, _>>()?,
        ),
        Yaml::Mapping(entries) => {
            let mut fields = Map::new();
            for (key, value) in entries {
                let key = match yaml_node_to_json(key)? {
                    Value::String(text) => text,
                    other => other.to_string(),
                };
                fields.insert(key, yaml_node_to_json(value)?);
            }
            Value::Object(fields)
        }
        Yaml::Tagged(_, inner) => yaml_node_to_json(inner)?,
        Yaml::Representation(text, _, _) => Value::String(text.to_string()),
        Yaml::Alias(_) | Yaml::BadValue => return Err(format!("unsupported YAML node {node:?}")),
    })
}
