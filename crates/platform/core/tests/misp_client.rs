//! The MISP client against `misp-sim` over HTTP and HTTPS: every call, every error class,
//! retries, timeouts, proxies and key redaction.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use misp_sim::{ForcedBody, ForcedResponse, MispSim, RolePermissions, SimOptions};
use serde_json::{Value, json};
use soar_core::misp::{
    CertificateCheck, MispClient, MispConfig, MispError, NewAttribute, NewEvent, NewSighting,
    RetryPolicy, Secret,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const FAST_RETRIES: RetryPolicy = RetryPolicy {
    base_delay: Duration::from_millis(5),
    max_delay: Duration::from_millis(20),
    max_retry_after: Duration::from_secs(2),
};

fn config_for(sim: &MispSim) -> MispConfig {
    MispConfig {
        url: reqwest::Url::parse(sim.url()).expect("the sim's URL parses"),
        key: Secret::new(sim.key()),
        certificate_check: CertificateCheck::System,
        http_proxy: None,
        https_proxy: None,
        timeout: Duration::from_secs(5),
        retries: 3,
        call_timeout: Duration::from_secs(60),
        search_limit: 100,
    }
}

fn client_for(sim: &MispSim) -> MispClient {
    MispClient::new(config_for(sim))
        .expect("a client")
        .with_retry_policy(FAST_RETRIES)
}

async fn http_sim() -> MispSim {
    MispSim::start(SimOptions::default()).await
}

fn new_event(info: &str) -> NewEvent {
    NewEvent {
        info: info.to_string(),
        distribution: Some(0),
        threat_level_id: Some(2),
        analysis: Some(1),
    }
}

fn attribute(attribute_type: &str, value: &str) -> NewAttribute {
    NewAttribute {
        attribute_type: attribute_type.to_string(),
        value: value.to_string(),
    }
}

fn text(value: &Value, pointer: &str) -> String {
    value
        .pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("expected a string at {pointer} in {value}"))
        .to_string()
}

#[tokio::test]
async fn every_call_round_trips_with_misps_shapes_and_headers() {
    let sim = http_sim().await;
    let client = client_for(&sim);

    let event = client
        .add_event(&new_event("Phishing wave"))
        .await
        .expect("add_event");
    let event_id = text(&event, "/Event/id");
    let event_uuid = text(&event, "/Event/uuid");
    assert_eq!(text(&event, "/Event/threat_level_id"), "2");
    assert_eq!(text(&event, "/Event/info"), "Phishing wave");

    let added = client
        .add_attribute(&event_uuid, &attribute("ip-dst", "198.51.100.7"))
        .await
        .expect("add_attribute");
    assert_eq!(text(&added, "/Attribute/value1"), "198.51.100.7");
    assert_eq!(text(&added, "/Attribute/event_id"), event_id);
    client
        .add_attribute(&event_id, &attribute("domain", "evil.example"))
        .await
        .expect("a second attribute");

    let viewed = client.get_event(&event_id).await.expect("get_event");
    assert_eq!(
        viewed["Event"]["Attribute"].as_array().map(Vec::len),
        Some(2)
    );

    let found = client
        .search_events(json!({"value": "198.51.100.7"}))
        .await
        .expect("search_events");
    let events = found.as_array().expect("the response wrapper is removed");
    assert_eq!(events.len(), 1);
    let attributes = events[0]["Event"]["Attribute"]
        .as_array()
        .expect("attributes");
    assert_eq!(attributes.len(), 1, "only the matching attribute: {found}");

    let attributes = client
        .search_attributes(json!({"value": "evil.example", "eventid": event_id}))
        .await
        .expect("search_attributes");
    assert_eq!(text(&attributes, "/Attribute/0/type"), "domain");

    let sighting = client
        .add_sighting(&NewSighting {
            value: "198.51.100.7".to_string(),
            timestamp: 1_700_000_000,
            source: "IBM QRadar SOAR".to_string(),
        })
        .await
        .expect("add_sighting");
    assert_eq!(text(&sighting, "/Sighting/source"), "IBM QRadar SOAR");
    assert_eq!(text(&sighting, "/Sighting/date_sighting"), "1700000000");

    let numeric_id: i64 = event_id.parse().expect("a numeric event id");
    let sightings = client
        .list_event_sightings(numeric_id)
        .await
        .expect("list_event_sightings");
    assert_eq!(text(&sightings, "/0/Organisation/name"), "ORGNAME");
    assert_eq!(text(&sightings, "/0/Sighting/event_id"), event_id);

    let tagged = client
        .attach_tag(&event_uuid, "tlp:amber", false)
        .await
        .expect("attach_tag");
    assert_eq!(tagged["saved"], json!(true));
    assert!(text(&tagged, "/message").starts_with("Global tag tlp:amber("));

    let version = client.get_version().await.expect("get_version");
    assert_eq!(text(&version, "/version"), "2.5.1");
    let me = client.get_me().await.expect("get_me");
    assert_eq!(me["Role"]["perm_add"], json!(true));

    let requests = sim.requests();
    assert!(
        sim.unexpected_requests().is_empty(),
        "unexpected: {requests:?}"
    );
    let search = requests
        .iter()
        .find(|request| request.path == "/events/restSearch")
        .expect("a search was sent");
    assert_eq!(search.body["returnFormat"], json!("json"));
    for request in &requests {
        assert_eq!(
            request.headers.get("authorization").map(String::as_str),
            Some(sim.key())
        );
        assert_eq!(
            request.headers.get("accept").map(String::as_str),
            Some("application/json")
        );
        let agent = request
            .headers
            .get("user-agent")
            .cloned()
            .unwrap_or_default();
        assert!(agent.starts_with("soar-misp-rs/"), "user agent was {agent}");
    }
    let create = requests
        .iter()
        .find(|request| request.path == "/events/add")
        .expect("a create was sent");
    assert_eq!(create.body["Event"]["distribution"], json!("0"));
    assert_eq!(
        create.headers.get("content-type").map(String::as_str),
        Some("application/json")
    );
}

#[tokio::test]
async fn https_works_with_the_sims_ca_and_fails_without_it() {
    let sim = MispSim::start(SimOptions {
        tls: true,
        ..SimOptions::default()
    })
    .await;
    assert!(sim.url().starts_with("https://localhost:"), "{}", sim.url());
    let ca = tempfile::NamedTempFile::new().expect("a temporary file");
    std::fs::write(ca.path(), sim.ca_pem().expect("a CA when serving TLS")).expect("write the CA");

    let mut trusted = config_for(&sim);
    trusted.certificate_check = CertificateCheck::CaFile(ca.path().to_path_buf());
    let version = MispClient::new(trusted)
        .expect("a client")
        .get_version()
        .await
        .expect("the sim's CA is trusted");
    assert_eq!(version["version"], json!("2.5.1"));

    let mut unchecked = config_for(&sim);
    unchecked.certificate_check = CertificateCheck::Off;
    MispClient::new(unchecked)
        .expect("a client")
        .get_version()
        .await
        .expect("verify_cert=false accepts any certificate");

    let mut system = config_for(&sim);
    system.retries = 0;
    let error = MispClient::new(system)
        .expect("a client")
        .get_version()
        .await
        .expect_err("the system roots do not know the sim's CA");
    assert!(matches!(error, MispError::Connect { .. }), "got {error:?}");
}

#[tokio::test]
async fn a_wrong_key_is_forbidden_with_misps_message() {
    let sim = http_sim().await;
    let mut config = config_for(&sim);
    config.key = Secret::new("WrongKeyWrongKeyWrongKeyWrongKey12345678");
    let error = MispClient::new(config)
        .expect("a client")
        .get_event("1")
        .await
        .expect_err("the key is wrong");
    match &error {
        MispError::Forbidden {
            status, message, ..
        } => {
            assert_eq!(*status, 403);
            assert!(message.starts_with("Authentication failed."), "{message}");
        }
        other => panic!("expected Forbidden, got {other:?}"),
    }
    assert_eq!(sim.request_count(), 1, "a refusal is not retried");
}

#[tokio::test]
async fn a_missing_role_flag_is_forbidden_and_names_the_acl() {
    let sim = http_sim().await;
    sim.set_permissions(RolePermissions::read_only());
    let error = client_for(&sim)
        .add_event(&new_event("not allowed"))
        .await
        .expect_err("read-only users cannot add events");
    assert!(
        matches!(&error, MispError::Forbidden { message, .. } if message == "You do not have permission to use this functionality."),
        "got {error:?}"
    );
}

#[tokio::test]
async fn a_duplicate_attribute_is_rejected_with_misps_save_fail_body() {
    let sim = http_sim().await;
    let client = client_for(&sim);
    let event = client
        .add_event(&new_event("dup"))
        .await
        .expect("add_event");
    let event_id = text(&event, "/Event/id");
    client
        .add_attribute(
            &event_id,
            &attribute("md5", "6c73d338ec64e0e44bd54ea61b6988b2"),
        )
        .await
        .expect("the first one is added");
    let error = client
        .add_attribute(
            &event_id,
            &attribute("md5", "6c73d338ec64e0e44bd54ea61b6988b2"),
        )
        .await
        .expect_err("the second is a duplicate");
    let body = error
        .body()
        .expect("a rejection carries MISP's body")
        .clone();
    assert_eq!(error.status(), Some(403));
    assert_eq!(body["saved"], json!(false));
    assert_eq!(
        body["errors"]["value"][0],
        json!("A similar attribute already exists for this event.")
    );
    assert!(
        error
            .to_string()
            .contains("A similar attribute already exists"),
        "{error}"
    );
}

#[tokio::test]
async fn unknown_events_are_not_found_and_bad_objects_are_rejected() {
    let sim = http_sim().await;
    let client = client_for(&sim);
    let error = client.get_event("999999").await.expect_err("no such event");
    assert!(
        matches!(&error, MispError::NotFound { message, .. } if message == "Invalid event"),
        "got {error:?}"
    );
    let error = client
        .list_event_sightings(424242)
        .await
        .expect_err("no such event");
    assert!(
        matches!(&error, MispError::Rejected { status: 405, message, .. } if message == "Invalid object."),
        "got {error:?}"
    );
    assert_eq!(sim.request_count(), 2, "4xx answers are not retried");
}

#[tokio::test]
async fn http_200_soft_errors_are_rejections() {
    let sim = http_sim().await;
    let client = client_for(&sim);
    let error = client
        .add_sighting(&NewSighting {
            value: "203.0.113.99".to_string(),
            timestamp: 1_700_000_000,
            source: "IBM QRadar SOAR".to_string(),
        })
        .await
        .expect_err("no attribute has that value");
    match &error {
        MispError::Rejected {
            status,
            message,
            body,
            ..
        } => {
            assert_eq!(*status, 200);
            assert!(
                message.starts_with("Could not add the Sighting. Reason:"),
                "{message}"
            );
            assert!(body["message"].is_string());
        }
        other => panic!("expected Rejected, got {other:?}"),
    }

    sim.force_next(
        1,
        ForcedResponse {
            status: 200,
            headers: Vec::new(),
            body: ForcedBody::Json(json!({"saved": false, "errors": "Invalid Tag."})),
        },
    );
    let error = client
        .attach_tag("5b646415-7b48-40d5-86b4-c0070acd0835", "x", false)
        .await
        .expect_err("saved: false is a failure");
    assert!(
        matches!(&error, MispError::Rejected { status: 200, message, .. } if message.contains("Invalid Tag.")),
        "got {error:?}"
    );
}

#[tokio::test]
async fn an_unknown_tag_without_tag_editor_is_a_save_fail_rejection() {
    let sim = http_sim().await;
    let client = client_for(&sim);
    let event = client
        .add_event(&new_event("tags"))
        .await
        .expect("add_event");
    sim.set_permissions(RolePermissions {
        tag_editor: false,
        ..RolePermissions::all()
    });
    let error = client
        .attach_tag(&text(&event, "/Event/uuid"), "brand:new", false)
        .await
        .expect_err("the tag cannot be created");
    assert!(
        matches!(&error, MispError::Rejected { status: 403, message, .. } if message.contains("Tag not found and insufficient privileges")),
        "got {error:?}"
    );
}

#[tokio::test]
async fn a_counted_event_search_keeps_misps_result_count_across_a_retry() {
    let sim = http_sim().await;
    let page = |count: Option<&str>| ForcedResponse {
        status: 200,
        headers: count
            .map(|count| vec![("X-Result-Count".to_string(), count.to_string())])
            .unwrap_or_default(),
        body: ForcedBody::Json(json!({"response": [{"Event": {"id": "7", "info": "seven"}}]})),
    };
    sim.fail_next(1, 503, None);
    sim.force_next(1, page(Some("42")));
    let counted = client_for(&sim)
        .search_events_counted(json!({"value": "x", "limit": 1, "page": 3}))
        .await
        .expect("the retry answers");
    assert_eq!(counted.result_count, Some(42));
    assert_eq!(
        counted.events,
        json!([{"Event": {"id": "7", "info": "seven"}}])
    );
    let requests = sim.requests();
    assert_eq!(requests.len(), 2, "one retry after the 503");
    assert_eq!(
        requests[1].body,
        json!({"value": "x", "limit": 1, "page": 3, "returnFormat": "json"})
    );

    sim.force_next(1, page(None));
    let counted = client_for(&sim)
        .search_events_counted(json!({"value": "x"}))
        .await
        .expect("an answer without the header");
    assert_eq!(counted.result_count, None);
}

#[tokio::test]
async fn gateway_errors_are_retried_for_safe_requests() {
    let sim = http_sim().await;
    sim.fail_next(2, 502, None);
    let version = client_for(&sim)
        .get_version()
        .await
        .expect("the third attempt works");
    assert_eq!(version["version"], json!("2.5.1"));
    assert_eq!(sim.request_count(), 3);
}

#[tokio::test]
async fn retries_stop_after_the_configured_count() {
    let sim = http_sim().await;
    sim.fail_next(10, 503, None);
    let mut config = config_for(&sim);
    config.retries = 2;
    let error = MispClient::new(config)
        .expect("a client")
        .with_retry_policy(FAST_RETRIES)
        .search_events(json!({"value": "x"}))
        .await
        .expect_err("every attempt fails");
    assert!(
        matches!(error, MispError::Server { status: 503, .. }),
        "got {error:?}"
    );
    assert!(
        error.to_string().contains("503 Bad Gateway"),
        "the proxy's page is quoted: {error}"
    );
    assert_eq!(sim.request_count(), 3, "one attempt and two retries");
}

#[tokio::test]
async fn creates_are_never_retried() {
    let sim = http_sim().await;
    let client = client_for(&sim);
    sim.fail_next(1, 503, None);
    let error = client.add_event(&new_event("once")).await.expect_err("503");
    assert!(
        matches!(error, MispError::Server { status: 503, .. }),
        "got {error:?}"
    );
    assert_eq!(sim.request_count(), 1);

    sim.drop_next(1);
    let error = client
        .add_sighting(&NewSighting {
            value: "x".to_string(),
            timestamp: 1,
            source: "s".to_string(),
        })
        .await
        .expect_err("the connection was dropped");
    assert!(matches!(error, MispError::Connect { .. }), "got {error:?}");
    assert_eq!(sim.request_count(), 2);
}

#[tokio::test]
async fn a_dropped_connection_is_retried_for_reads() {
    let sim = http_sim().await;
    sim.drop_next(1);
    client_for(&sim).get_me().await.expect("the retry answers");
    assert_eq!(sim.request_count(), 2);
}

#[tokio::test]
async fn a_server_error_is_not_retried() {
    let sim = http_sim().await;
    sim.fail_next(1, 500, None);
    let error = client_for(&sim).get_version().await.expect_err("500");
    assert!(
        matches!(&error, MispError::Server { status: 500, message, .. } if message == "An Internal Error Has Occurred."),
        "got {error:?}"
    );
    assert_eq!(sim.request_count(), 1);
}

#[tokio::test]
async fn rate_limiting_honours_retry_after() {
    let sim = http_sim().await;
    sim.force_next(
        1,
        ForcedResponse {
            status: 429,
            headers: vec![("Retry-After".to_string(), "1".to_string())],
            body: ForcedBody::Json(json!({"name": "Rate limit exceeded.", "message": "Rate limit exceeded.", "url": "/servers/getVersion"})),
        },
    );
    let started = Instant::now();
    client_for(&sim)
        .get_version()
        .await
        .expect("the retry after one second works");
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "waited only {:?}",
        started.elapsed()
    );
    assert_eq!(sim.request_count(), 2);

    // A longer wait than the policy allows is reported instead of waited for.
    sim.force_next(
        1,
        ForcedResponse {
            status: 429,
            headers: vec![("Retry-After".to_string(), "3600".to_string())],
            body: ForcedBody::Json(json!({"name": "Rate limit exceeded.", "message": "Rate limit exceeded.", "url": "/"})),
        },
    );
    let error = client_for(&sim)
        .get_version()
        .await
        .expect_err("too long to wait");
    assert!(
        matches!(error, MispError::RateLimited { retry_after: Some(wait), .. } if wait == Duration::from_secs(3600)),
        "got {error:?}"
    );
    assert_eq!(sim.request_count(), 3);
}

#[tokio::test]
async fn a_slow_misp_times_out_and_reads_are_retried() {
    let sim = http_sim().await;
    sim.set_latency(Duration::from_millis(600));
    let mut config = config_for(&sim);
    config.timeout = Duration::from_millis(200);
    config.retries = 1;
    let client = MispClient::new(config)
        .expect("a client")
        .with_retry_policy(FAST_RETRIES);
    let error = client.get_event("1").await.expect_err("too slow");
    assert!(matches!(error, MispError::Timeout { .. }), "got {error:?}");
    // The sim records on arrival, so the abandoned second attempt shows too.
    assert_eq!(sim.request_count(), 2);

    sim.set_latency(Duration::ZERO);
    sim.clear_requests();
    sim.hang_next(1);
    let error = client
        .add_event(&new_event("hang"))
        .await
        .expect_err("no answer");
    assert!(matches!(error, MispError::Timeout { .. }), "got {error:?}");
    assert_eq!(
        sim.request_count(),
        1,
        "a create is not repeated after a timeout"
    );
}

#[tokio::test]
async fn a_non_json_answer_is_an_invalid_response_with_an_excerpt() {
    let sim = http_sim().await;
    sim.force_next(
        1,
        ForcedResponse {
            status: 200,
            headers: Vec::new(),
            body: ForcedBody::Text {
                content_type: "text/html".to_string(),
                text: "<!DOCTYPE html><html><title>Users - MISP</title></html>".to_string(),
            },
        },
    );
    let error = client_for(&sim).get_version().await.expect_err("HTML");
    match &error {
        MispError::InvalidResponse { problem, .. } => {
            assert!(problem.contains("text/html"), "{problem}");
            assert!(problem.contains("Users - MISP"), "{problem}");
        }
        other => panic!("expected InvalidResponse, got {other:?}"),
    }

    sim.force_next(
        1,
        ForcedResponse {
            status: 200,
            headers: Vec::new(),
            body: ForcedBody::Json(json!({"Event": {"info": "no id"}})),
        },
    );
    let error = client_for(&sim).get_event("1").await.expect_err("no id");
    assert!(
        matches!(&error, MispError::InvalidResponse { problem, .. } if problem.contains("Event")),
        "the JSON path is named: {error:?}"
    );
}

#[tokio::test]
async fn requests_go_through_the_configured_proxy() {
    let sim = http_sim().await;
    let proxy = ForwardProxy::start().await;
    let mut config = config_for(&sim);
    config.http_proxy = Some(proxy.url());
    let client = MispClient::new(config).expect("a client");
    client.get_version().await.expect("through the proxy");
    assert_eq!(proxy.connections(), 1);
    let first_line = proxy.first_request_line();
    assert!(
        first_line.starts_with(&format!("GET {}/servers/getVersion ", sim.url())),
        "the proxy saw {first_line}"
    );
    assert_eq!(sim.request_count(), 1);
}

#[tokio::test]
async fn the_key_never_shows_in_debug_output_or_errors() {
    let sim = http_sim().await;
    let key = sim.key().to_string();
    let client = client_for(&sim);
    // A misbehaving server echoing the key must not get it into our errors.
    sim.force_next(
        1,
        ForcedResponse {
            status: 500,
            headers: Vec::new(),
            body: ForcedBody::Json(json!({"name": format!("bad key {key}"), "message": format!("bad key {key}"), "url": "/"})),
        },
    );
    let error = client.get_version().await.expect_err("500");
    let shown = format!("{client:?} {:?} {error} {error:?}", client.config());
    assert!(!shown.contains(&key), "the key leaked: {shown}");
    assert!(shown.contains("<redacted>"), "{shown}");
}

/// A minimal HTTP forward proxy: it records the first request line of each connection and
/// pipes the bytes to the origin named in the absolute-form URI.
struct ForwardProxy {
    address: std::net::SocketAddr,
    connections: Arc<AtomicUsize>,
    lines: Arc<std::sync::Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl ForwardProxy {
    async fn start() -> ForwardProxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let address = listener.local_addr().expect("address");
        let connections = Arc::new(AtomicUsize::new(0));
        let lines = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (counter, seen) = (Arc::clone(&connections), Arc::clone(&lines));
        let task = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                let seen = Arc::clone(&seen);
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut buffer = [0u8; 4096];
                    while !head.windows(4).any(|window| window == b"\r\n\r\n") {
                        match client.read(&mut buffer).await {
                            Ok(0) | Err(_) => return,
                            Ok(read) => head.extend_from_slice(&buffer[..read]),
                        }
                    }
                    let text = String::from_utf8_lossy(&head).to_string();
                    let line = text.lines().next().unwrap_or_default().to_string();
                    seen.lock().expect("lock").push(line.clone());
                    let target = line
                        .split_whitespace()
                        .nth(1)
                        .and_then(|uri| uri.strip_prefix("http://"))
                        .and_then(|rest| rest.split('/').next())
                        .unwrap_or_default()
                        .to_string();
                    let Ok(mut origin) = tokio::net::TcpStream::connect(target).await else {
                        return;
                    };
                    if origin.write_all(&head).await.is_err() {
                        return;
                    }
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut origin).await;
                });
            }
        });
        ForwardProxy {
            address,
            connections,
            lines,
            task,
        }
    }

    fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    fn first_request_line(&self) -> String {
        self.lines
            .lock()
            .expect("lock")
            .first()
            .cloned()
            .unwrap_or_default()
    }
}

impl Drop for ForwardProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[tokio::test]
async fn an_answer_larger_than_the_limit_is_refused_without_reading_it_all() {
    let sim = http_sim().await;
    for index in 0..40 {
        let event = client_for(&sim)
            .add_event(&new_event(&format!(
                "bulk event {index} {}",
                "x".repeat(200)
            )))
            .await
            .expect("add_event");
        let id = text(&event, "/Event/id");
        client_for(&sim)
            .add_attribute(&id, &attribute("ip-dst", "198.51.100.9"))
            .await
            .expect("add_attribute");
    }
    let small = client_for(&sim).with_max_answer_bytes(4 * 1024);
    let error = small
        .search_events(json!({"value": "198.51.100.9"}))
        .await
        .expect_err("40 events are far more than 4 KiB");
    let text = error.to_string();
    assert!(matches!(error, MispError::InvalidResponse { .. }), "{text}");
    assert!(text.contains("narrow the request"), "{text}");
    let found = client_for(&sim)
        .search_events(json!({"value": "198.51.100.9"}))
        .await
        .expect("the default limit reads the same answer");
    assert_eq!(found.as_array().map(Vec::len), Some(40));
}

/// `change_checked`'s attempts at one change: `POST /attributes/add/{event}` of a domain,
/// whose check looks the value up in the event with `attributes/restSearch`.
struct CheckedAdd {
    sim: MispSim,
    client: MispClient,
    event_id: String,
    checks: Arc<AtomicUsize>,
}

const CHECKED_VALUE: &str = "checked.example";

impl CheckedAdd {
    async fn start(retries: u32) -> CheckedAdd {
        CheckedAdd::start_with(retries, |_| {}).await
    }

    /// One call's view of a client whose `[fn_misp]` timings `adjust` sets.
    async fn start_in_budget(retries: u32, adjust: impl FnOnce(&mut MispConfig)) -> CheckedAdd {
        let mut add = CheckedAdd::start_with(retries, adjust).await;
        add.client = add.client.for_call();
        add
    }

    async fn start_with(retries: u32, adjust: impl FnOnce(&mut MispConfig)) -> CheckedAdd {
        let sim = http_sim().await;
        let event_id = sim.seed_event(json!({"info": "checked changes"}));
        let mut config = config_for(&sim);
        config.retries = retries;
        adjust(&mut config);
        let client = MispClient::new(config)
            .expect("a client")
            .with_retry_policy(FAST_RETRIES);
        CheckedAdd {
            sim,
            client,
            event_id,
            checks: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// The change, with a check that reads MISP.
    async fn add(&self) -> Result<Value, MispError> {
        let checks = Arc::clone(&self.checks);
        let client = &self.client;
        let event_id = self.event_id.as_str();
        let check = move || {
            checks.fetch_add(1, Ordering::SeqCst);
            async move {
                let found = client
                    .search_attributes(json!({"eventid": event_id, "value": CHECKED_VALUE}))
                    .await?;
                let attribute = found["Attribute"].as_array().and_then(|list| list.first());
                Ok(attribute.map(|attribute| json!({"Attribute": attribute})))
            }
        };
        self.add_with(check).await
    }

    /// The change, with a check that only counts and says "not applied".
    async fn add_unchecked(&self) -> Result<Value, MispError> {
        let checks = Arc::clone(&self.checks);
        self.add_with(move || {
            checks.fetch_add(1, Ordering::SeqCst);
            async { Ok(None) }
        })
        .await
    }

    async fn add_with<Check, Checked>(&self, check: Check) -> Result<Value, MispError>
    where
        Check: Fn() -> Checked,
        Checked: std::future::Future<Output = Result<Option<Value>, MispError>>,
    {
        let body = json!({"type": "domain", "value": CHECKED_VALUE});
        self.client
            .change_checked(
                reqwest::Method::POST,
                &["attributes", "add", &self.event_id],
                Some(&body),
                check,
            )
            .await
    }

    /// How often the change itself was sent.
    fn sends(&self) -> usize {
        self.sim
            .requests()
            .iter()
            .filter(|request| request.path.starts_with("/attributes/add/"))
            .count()
    }

    fn checks(&self) -> usize {
        self.checks.load(Ordering::SeqCst)
    }

    /// The attributes with the value that MISP now holds.
    fn stored(&self) -> usize {
        self.sim
            .events()
            .iter()
            .flat_map(|event| event["Event"]["Attribute"].as_array().cloned())
            .flatten()
            .filter(|attribute| attribute["value"] == CHECKED_VALUE)
            .count()
    }
}

#[tokio::test]
async fn a_change_whose_answer_was_lost_is_checked_and_not_sent_again() {
    let add = CheckedAdd::start(3).await;
    add.sim.lose_next_answers(1);
    let answer = add.add().await.expect("the check finds the change applied");
    assert_eq!(answer["Attribute"]["value"], CHECKED_VALUE, "{answer}");
    assert_eq!(add.sends(), 1, "the change is sent once");
    assert_eq!(add.checks(), 1, "one check after the lost answer");
    assert_eq!(add.stored(), 1, "MISP holds the attribute once");
}

#[tokio::test]
async fn a_check_that_finds_nothing_leads_to_exactly_one_resend() {
    let add = CheckedAdd::start(3).await;
    // Closed before MISP acted: the change never happened.
    add.sim.drop_next(1);
    let answer = add.add().await.expect("the resend is answered");
    assert_eq!(answer["Attribute"]["value"], CHECKED_VALUE, "{answer}");
    assert_eq!(add.checks(), 1);
    assert_eq!(add.sends(), 2, "one send, one resend");
    assert_eq!(add.stored(), 1);
    let add_path = format!("/attributes/add/{}", add.event_id);
    let paths: Vec<String> = add.sim.requests().into_iter().map(|r| r.path).collect();
    assert_eq!(
        paths,
        [
            add_path.as_str(),
            "/attributes/restSearch",
            add_path.as_str()
        ],
        "the check comes before the resend"
    );
}

#[tokio::test]
async fn a_permanent_error_is_neither_checked_nor_retried() {
    let add = CheckedAdd::start(3).await;
    add.sim.fail_next(1, 404, None);
    let error = add.add().await.expect_err("404");
    assert!(matches!(error, MispError::NotFound { .. }), "got {error:?}");
    assert_eq!((add.sends(), add.checks()), (1, 0));

    // MISP refusing the content (a duplicate, HTTP 403 saved: false) is permanent too.
    add.add().await.expect("the first add");
    let error = add.add().await.expect_err("a duplicate");
    assert!(
        matches!(error, MispError::Rejected { status: 403, .. }),
        "got {error:?}"
    );
    assert_eq!((add.sends(), add.checks()), (3, 0));
    assert_eq!(add.stored(), 1);
}

#[tokio::test]
async fn a_changes_attempts_respect_retries() {
    for retries in [0, 2] {
        let add = CheckedAdd::start(retries).await;
        add.sim.fail_next(10, 503, None);
        let error = add.add_unchecked().await.expect_err("every attempt fails");
        assert!(
            matches!(error, MispError::Server { status: 503, .. }),
            "got {error:?}"
        );
        let attempts = retries as usize + 1;
        assert_eq!(add.sends(), attempts, "retries = {retries}");
        assert_eq!(add.checks(), attempts - 1, "one check before each resend");
    }
}

#[tokio::test]
async fn a_check_that_fails_for_a_transient_reason_counts_as_an_attempt() {
    let add = CheckedAdd::start(2).await;
    // The change's answer is lost; then every search of both checks (each retried as a
    // read, three tries apiece) is answered 503.
    add.sim.lose_next_answers(1);
    add.sim.fail_next(9, 503, None);
    let error = add.add().await.expect_err("neither check gets through");
    assert!(
        matches!(error, MispError::Server { status: 503, .. }),
        "got {error:?}"
    );
    assert_eq!(add.sends(), 1, "a change is never resent without a check");
    assert_eq!(
        add.checks(),
        2,
        "two attempts after the first, each a failed check"
    );
    assert_eq!(add.stored(), 1);
}

/// Keeps every attempt the client reports.
#[derive(Default)]
struct Attempts(std::sync::Mutex<Vec<(String, String, soar_core::observe::AttemptEnd, bool)>>);

impl soar_core::observe::RequestObserver for Attempts {
    fn attempt_finished(&self, attempt: &soar_core::observe::FinishedAttempt<'_>) {
        assert_eq!(attempt.service, soar_core::observe::Service::Misp);
        self.0.lock().expect("not poisoned").push((
            attempt.method.to_string(),
            attempt.endpoint.to_string(),
            attempt.end,
            attempt.retry,
        ));
    }
}

#[tokio::test]
async fn the_observer_sees_each_attempt_by_endpoint_template_and_a_refused_connection() {
    use soar_core::observe::AttemptEnd;
    let sim = http_sim().await;
    let attempts = Arc::new(Attempts::default());
    let client = client_for(&sim).with_observer(attempts.clone());
    let created = client.add_event(&new_event("observed")).await.unwrap();
    let id = text(&created, "/Event/id");
    sim.fail_next(1, 503, None);
    client.get_event(&id).await.unwrap();
    let seen = attempts.0.lock().unwrap().clone();
    assert_eq!(
        seen,
        [
            (
                "POST".into(),
                "/events/add".into(),
                AttemptEnd::Answered(200),
                false
            ),
            (
                "GET".into(),
                "/events/view".into(),
                AttemptEnd::Answered(503),
                false
            ),
            (
                "GET".into(),
                "/events/view".into(),
                AttemptEnd::Answered(200),
                true
            ),
        ],
        "the event id never shows in an endpoint"
    );

    // Nothing listens on a port just freed: the connection is refused.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .unwrap()
        .port();
    let mut config = config_for(&sim);
    config.url = reqwest::Url::parse(&format!("http://127.0.0.1:{port}/")).unwrap();
    config.retries = 0;
    let closed_attempts = Arc::new(Attempts::default());
    let closed = MispClient::new(config)
        .unwrap()
        .with_observer(closed_attempts.clone());
    assert!(closed.get_version().await.is_err());
    let seen = closed_attempts.0.lock().unwrap().clone();
    assert_eq!(
        seen,
        [(
            "GET".into(),
            "/servers/getVersion".into(),
            AttemptEnd::ConnectFailed,
            false
        )]
    );
}

/// A change `change_checked` sends again, after a check found it not applied, is reported as
/// a retry, so the runner's `misp_retries_total` counts it like a retried read.
#[tokio::test]
async fn the_observer_counts_a_checked_resend_as_a_retry() {
    let mut add = CheckedAdd::start(1).await;
    let attempts = Arc::new(Attempts::default());
    add.client = add.client.clone().with_observer(attempts.clone());
    add.sim.fail_next(1, 503, None);
    add.add_unchecked().await.expect("the resend succeeds");
    let adds: Vec<bool> = attempts
        .0
        .lock()
        .unwrap()
        .iter()
        .filter(|(_, endpoint, _, _)| endpoint == "/attributes/add")
        .map(|(_, _, _, retry)| *retry)
        .collect();
    assert_eq!(
        adds,
        [false, true],
        "the first send, then the checked resend"
    );
}

/// A call's view of a client with a 300 ms `timeout` and a `call_timeout` of `budget`.
fn budgeted_call(sim: &MispSim, budget: Duration, retry: RetryPolicy) -> MispClient {
    let mut config = config_for(sim);
    config.timeout = Duration::from_millis(300);
    config.retries = 3;
    config.call_timeout = budget;
    MispClient::new(config)
        .expect("a client")
        .with_retry_policy(retry)
        .for_call()
}

#[tokio::test]
async fn a_hanging_misp_ends_a_calls_reads_at_its_budget_and_nothing_more_is_sent() {
    let sim = http_sim().await;
    sim.hang_next(100);
    let client = budgeted_call(&sim, Duration::from_millis(800), FAST_RETRIES);
    let started = Instant::now();
    let error = client
        .search_attributes(json!({"value": "198.51.100.1"}))
        .await
        .expect_err("MISP never answers");
    let elapsed = started.elapsed();
    assert!(
        matches!(error, MispError::BudgetSpent { budget, .. } if budget == Duration::from_millis(800)),
        "got {error:?}"
    );
    assert_eq!(
        error.to_string(),
        "MISP did not answer within the call's 0.8 s budget ([fn_misp] call_timeout); POST /attributes/restSearch had no answer when it ran out (attempt 3 of 4)"
    );
    // Without the budget: four attempts of 300 ms each and their back-offs.
    assert!(
        elapsed >= Duration::from_millis(790) && elapsed < Duration::from_millis(1000),
        "the call ends at its budget, 0.8 s; it took {elapsed:?}"
    );
    assert_eq!(sim.request_count(), 3, "two whole attempts, one cut short");
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(sim.request_count(), 3, "nothing is sent after the budget");
}

#[tokio::test]
async fn a_retry_that_could_not_start_before_the_deadline_is_not_made() {
    let sim = http_sim().await;
    sim.fail_next(10, 503, None);
    // Each back-off is 1 to 2 s, longer than the whole budget.
    let slow_retries = RetryPolicy {
        base_delay: Duration::from_secs(2),
        max_delay: Duration::from_secs(2),
        max_retry_after: Duration::from_secs(2),
    };
    let client = budgeted_call(&sim, Duration::from_millis(800), slow_retries);
    let started = Instant::now();
    let error = client.get_version().await.expect_err("503, then no time");
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "no back-off is waited for that would end past the deadline: {:?}",
        started.elapsed()
    );
    let text = error.to_string();
    assert!(
        text.starts_with("MISP did not answer within the call's 0.8 s budget ([fn_misp] call_timeout); GET /servers/getVersion failed (attempt 1 of 4) and a retry could not start in time: MISP failed on GET /servers/getVersion (HTTP 503)"),
        "{text}"
    );
    assert_eq!(sim.request_count(), 1);
}

#[tokio::test]
async fn a_call_whose_budget_is_spent_sends_nothing() {
    let sim = http_sim().await;
    let client = budgeted_call(&sim, Duration::from_millis(100), FAST_RETRIES);
    // The function spent its time elsewhere before its first MISP request.
    tokio::time::sleep(Duration::from_millis(150)).await;
    let error = client.get_version().await.expect_err("no time left");
    assert_eq!(
        error.to_string(),
        "MISP did not answer within the call's 0.1 s budget ([fn_misp] call_timeout); GET /servers/getVersion was not sent (attempt 1 of 4)"
    );
    assert_eq!(sim.request_count(), 0);
}

#[tokio::test]
async fn each_call_gets_its_own_budget_and_the_shared_client_none() {
    let sim = http_sim().await;
    let mut config = config_for(&sim);
    config.timeout = Duration::from_millis(300);
    config.retries = 0;
    config.call_timeout = Duration::from_millis(300);
    let shared = MispClient::new(config).expect("a client");
    let first = shared.for_call();
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert!(
        matches!(
            first.get_version().await,
            Err(MispError::BudgetSpent { .. })
        ),
        "the first call's budget is spent"
    );
    shared
        .for_call()
        .get_version()
        .await
        .expect("a call made now has its whole budget");
    shared
        .get_version()
        .await
        .expect("the shared client has no budget");
}

#[tokio::test]
async fn a_function_contexts_client_carries_the_calls_budget_from_when_it_was_made() {
    let sim = http_sim().await;
    sim.hang_next(100);
    let mut config = config_for(&sim);
    config.timeout = Duration::from_secs(5);
    config.call_timeout = Duration::from_millis(500);
    let shared = Arc::new(MispClient::new(config).expect("a client"));
    let app_config = soar_core::config::AppConfig::parse("", "budget test").expect("empty");
    let context = soar_core::FunctionContext::new(
        Arc::new(|_: String| {}),
        Ok(shared),
        Arc::new(app_config),
        None,
        tokio_util::sync::CancellationToken::new(),
    );
    let started = Instant::now();
    let error = context
        .misp()
        .expect("a client")
        .get_version()
        .await
        .expect_err("MISP hangs");
    assert!(
        matches!(error, MispError::BudgetSpent { .. }),
        "got {error:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "the 0.5 s budget ends the call, not the 5 s timeout: {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_change_applied_but_unanswered_at_the_deadline_is_not_sent_again() {
    let add = CheckedAdd::start_in_budget(3, |config| {
        config.timeout = Duration::from_millis(400);
        config.call_timeout = Duration::from_millis(400);
    })
    .await;
    add.sim.apply_and_hang_next(1);
    let error = add.add().await.expect_err("no answer within the budget");
    let text = error.to_string();
    assert!(
        text.starts_with("MISP did not answer within the call's 0.4 s budget ([fn_misp] call_timeout); POST /attributes/add/")
            && text.ends_with("had no answer when it ran out (attempt 1 of 4); MISP may have applied it"),
        "{text}"
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        (add.sends(), add.checks()),
        (1, 0),
        "no check and no resend past the deadline"
    );
    assert_eq!(add.stored(), 1, "MISP holds the attribute once");
}

#[tokio::test]
async fn a_change_whose_check_runs_into_the_deadline_is_not_sent_again() {
    let add = CheckedAdd::start_in_budget(3, |config| {
        config.timeout = Duration::from_millis(300);
        config.call_timeout = Duration::from_millis(700);
    })
    .await;
    // The change is applied and its answer never comes (a 300 ms timeout, 400 ms left);
    // then the check's searches hang too, until the deadline.
    add.sim.apply_and_hang_next(1);
    add.sim.hang_next(10);
    let started = Instant::now();
    let error = add.add().await.expect_err("the check never answers");
    let elapsed = started.elapsed();
    let text = error.to_string();
    assert!(
        text.starts_with("MISP did not answer within the call's 0.7 s budget ([fn_misp] call_timeout); POST /attributes/restSearch had no answer when it ran out (attempt 2 of 4); whether MISP applied POST /attributes/add/")
            && text.ends_with("is unknown (its answer was lost), so it was not sent again"),
        "{text}"
    );
    assert!(
        elapsed < Duration::from_millis(900),
        "the call ends at its 0.7 s budget: {elapsed:?}"
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!((add.sends(), add.checks()), (1, 1));
    assert_eq!(add.stored(), 1, "MISP holds the attribute once");
}

#[tokio::test]
async fn a_change_whose_answer_was_lost_early_in_the_budget_is_found_by_its_check() {
    let add = CheckedAdd::start_in_budget(3, |config| {
        config.timeout = Duration::from_millis(300);
        config.call_timeout = Duration::from_secs(3);
    })
    .await;
    add.sim.apply_and_hang_next(1);
    let answer = add.add().await.expect("the check finds the change applied");
    assert_eq!(answer["Attribute"]["value"], CHECKED_VALUE, "{answer}");
    assert_eq!((add.sends(), add.checks()), (1, 1));
    assert_eq!(add.stored(), 1);
}
