//! The simulator's bodies against real MISP responses and the shapes taken from MISP's source
//! (`tests/fixtures/misp`): same keys, same JSON types, same error envelopes.

use misp_sim::{MispSim, SimOptions};
use serde_json::{Value, json};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../tests/fixtures/misp");

fn fixture(relative: &str) -> Value {
    let path = format!("{FIXTURES}/{relative}");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("{path}: {error}"));
    serde_json::from_str(&text).unwrap_or_else(|error| panic!("{path}: {error}"))
}

fn shape(name: &str) -> (u16, Value) {
    let shapes = fixture("derived/response_shapes_from_misp_source.json");
    let case = &shapes[name];
    let status = case["status"]
        .as_u64()
        .unwrap_or_else(|| panic!("no case {name}"));
    (status as u16, case["body"].clone())
}

/// Every key of `expected` is in `actual` with the same JSON type (a `null` on either side
/// matches anything); arrays compare their first elements.
fn assert_same_shape(expected: &Value, actual: &Value, path: &str) {
    match (expected, actual) {
        (Value::Null, _) | (_, Value::Null) => {}
        (Value::Object(expected), Value::Object(actual)) => {
            for (key, value) in expected {
                let Some(found) = actual.get(key) else {
                    panic!(
                        "{path}.{key} is missing; the sim has {:?}",
                        actual.keys().collect::<Vec<_>>()
                    );
                };
                assert_same_shape(value, found, &format!("{path}.{key}"));
            }
        }
        (Value::Array(expected), Value::Array(actual)) => {
            if let (Some(first), Some(found)) = (expected.first(), actual.first()) {
                assert_same_shape(first, found, &format!("{path}[0]"));
            }
        }
        (Value::String(_), Value::String(_))
        | (Value::Bool(_), Value::Bool(_))
        | (Value::Number(_), Value::Number(_)) => {}
        _ => panic!("{path}: expected a value like {expected}, the sim sent {actual}"),
    }
}

struct Client {
    http: reqwest::Client,
    base: String,
    key: String,
}

impl Client {
    fn new(sim: &MispSim) -> Client {
        // reqwest is built without a default provider; tests pick ring like the product does.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut builder = reqwest::Client::builder();
        if let Some(pem) = sim.ca_pem() {
            let certificates =
                reqwest::Certificate::from_pem_bundle(pem.as_bytes()).expect("the sim's CA parses");
            builder = builder.tls_certs_only(certificates);
        }
        Client {
            http: builder.build().expect("a client"),
            base: sim.url().to_string(),
            key: sim.key().to_string(),
        }
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, reqwest::header::HeaderMap, Value) {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .header("Authorization", &self.key)
            .header("Accept", "application/json");
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("the sim answers");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.expect("a body");
        let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, headers, value)
    }

    async fn post(&self, path: &str, body: Value) -> (u16, reqwest::header::HeaderMap, Value) {
        self.send(reqwest::Method::POST, path, Some(body)).await
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        let (status, _, body) = self.send(reqwest::Method::GET, path, None).await;
        (status, body)
    }
}

#[tokio::test]
async fn a_seeded_real_event_is_viewed_with_the_captured_shape() {
    let sim = MispSim::start(SimOptions::default()).await;
    let captured = fixture("captured/event_view_with_sightings.pymisp-fixture.json");
    let id = sim.seed_event(captured.clone());
    assert_eq!(id, "60", "the fixture's id is kept");
    let client = Client::new(&sim);
    let (status, body) = client.get("/events/view/60").await;
    assert_eq!(status, 200);
    assert_same_shape(&captured, &body, "");
    let attributes = |event: &Value| event["Event"]["Attribute"].as_array().map(Vec::len);
    assert_eq!(attributes(&body), attributes(&captured));
    assert_eq!(
        body["Event"]["Attribute"][0]["Sighting"][0]["Organisation"]["name"],
        json!("ORGNAME")
    );
}

#[tokio::test]
async fn a_created_event_and_attribute_have_misps_shapes() {
    let sim = MispSim::start(SimOptions::default()).await;
    let client = Client::new(&sim);
    let (status, _, event) = client
        .post("/events/add", json!({"Event": {"info": "shape check", "distribution": "0", "threat_level_id": "1", "analysis": "2"}}))
        .await;
    assert_eq!(status, 200);
    assert_same_shape(
        &fixture("captured/event_add_response_empty_event.pymisp-fixture.json"),
        &event,
        "",
    );
    let sample = fixture("../fn_misp/payload_samples/misp_create_event/output_json_example.json");
    assert_same_shape(&sample["content"], &event, "");

    let event_id = event["Event"]["id"].as_str().expect("an id").to_string();
    let (status, _, attribute) = client
        .post(
            &format!("/attributes/add/{event_id}"),
            json!({"type": "ip-dst", "value": "198.51.100.7"}),
        )
        .await;
    assert_eq!(status, 200);
    let (_, expected) = shape("attributes_add_single_ok");
    assert_same_shape(&expected, &attribute, "");
    assert_eq!(
        attribute["Attribute"]["category"],
        json!("Network activity")
    );
    assert_eq!(attribute["Attribute"]["to_ids"], json!(true));

    let (status, _, duplicate) = client
        .post(
            &format!("/attributes/add/{event_id}"),
            json!({"type": "ip-dst", "value": "198.51.100.7"}),
        )
        .await;
    let (expected_status, expected) = shape("attributes_add_duplicate");
    assert_eq!((status, duplicate), (expected_status, expected));

    let (status, _, malformed) = client
        .post(
            &format!("/attributes/add/{event_id}"),
            json!({"type": "ip-dst", "value": "not an address"}),
        )
        .await;
    let (expected_status, expected) = shape("attributes_add_bad_value");
    assert_eq!((status, malformed), (expected_status, expected));
}

#[tokio::test]
async fn searches_wrap_results_and_count_them() {
    let sim = MispSim::start(SimOptions::default()).await;
    sim.seed_event(fixture(
        "captured/event_view_with_sightings.pymisp-fixture.json",
    ));
    let client = Client::new(&sim);

    let (status, headers, body) = client
        .post("/attributes/restSearch", json!({"returnFormat": "json", "value": "ooiasjdnqjwbeasdasd.com", "includeEventTags": 1}))
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        headers
            .get("x-result-count")
            .and_then(|value| value.to_str().ok()),
        Some("1")
    );
    let captured = fixture("captured/attributes_restsearch_by_type.xsoar-fixture.json");
    assert_same_shape(&captured, &body["response"], "response");
    let tags = body["response"]["Attribute"][0]["Tag"]
        .as_array()
        .expect("event tags are inherited");
    assert!(
        tags.iter().all(|tag| tag["inherited"] == json!(1)),
        "{tags:?}"
    );

    let (status, headers, events) = client
        .post(
            "/events/restSearch",
            json!({"returnFormat": "json", "value": "eqowiesajenqweasd.com"}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        headers
            .get("x-result-count")
            .and_then(|value| value.to_str().ok()),
        Some("1")
    );
    let attributes = events["response"][0]["Event"]["Attribute"]
        .as_array()
        .expect("attributes");
    assert_eq!(
        attributes.len(),
        1,
        "only the matching attribute is returned"
    );
    let sample =
        fixture("../fn_misp/payload_samples/misp_search_attribute/output_json_example.json");
    assert_same_shape(&sample["content"]["content"][0], &events["response"][0], "");

    let (_, _, empty) = client
        .post(
            "/events/restSearch",
            json!({"value": "nothing.example", "limit": 5, "page": 1}),
        )
        .await;
    assert_eq!(empty, json!({"response": []}));
}

#[tokio::test]
async fn sightings_are_added_listed_and_soft_fail_like_misp() {
    let sim = MispSim::start(SimOptions::default()).await;
    sim.seed_event(fixture(
        "captured/event_view_with_sightings.pymisp-fixture.json",
    ));
    let client = Client::new(&sim);

    let (status, _, added) = client
        .post("/sightings/add", json!({"value": "ooiasjdnqjwbeasdasd.com", "timestamp": 1_700_000_000, "source": "IBM QRadar SOAR"}))
        .await;
    assert_eq!(status, 200);
    let (_, expected) = shape("sightings_add_ok");
    assert_same_shape(&expected, &added, "");

    let (status, _, soft) = client
        .post("/sightings/add", json!({"value": "absent.example"}))
        .await;
    let (expected_status, expected) = shape("sightings_add_no_match_SOFT_ERROR_HTTP_200");
    assert_eq!((status, soft), (expected_status, expected));

    let (status, _, list) = client
        .post(
            "/sightings/listSightings",
            json!({"context": "event", "id": 60}),
        )
        .await;
    assert_eq!(status, 200);
    assert_same_shape(
        &fixture("derived/sightings_listSightings_event.json"),
        &list,
        "",
    );
    assert_eq!(
        list.as_array().map(Vec::len),
        Some(7),
        "six seeded and one new: {list}"
    );
    assert_eq!(
        list[0]["Sighting"]["date_sighting"],
        json!("1700000000"),
        "newest first"
    );

    let (status, _, invalid) = client
        .post(
            "/sightings/listSightings",
            json!({"context": "event", "id": 999}),
        )
        .await;
    let (expected_status, expected) = shape("sightings_listSightings_bad_id");
    assert_eq!((status, invalid), (expected_status, expected));
}

#[tokio::test]
async fn tags_attach_once_and_report_misps_messages() {
    let sim = MispSim::start(SimOptions::default()).await;
    sim.seed_event(fixture(
        "captured/event_view_with_sightings.pymisp-fixture.json",
    ));
    let client = Client::new(&sim);
    let body =
        json!({"uuid": "5b646415-7b48-40d5-86b4-c0070acd0835", "tag": "tlp:amber", "local": false});
    let (status, _, attached) = client.post("/tags/attachTagToObject", body.clone()).await;
    assert_eq!(status, 200);
    let (_, expected) = shape("tags_attachTagToObject_ok_global");
    assert_same_shape(&expected, &attached, "");
    assert!(
        attached["message"]
            .as_str()
            .is_some_and(|text| text.ends_with("successfully attached to Event(60).")),
        "{attached}"
    );

    let (_, _, again) = client.post("/tags/attachTagToObject", body).await;
    assert_eq!(
        again["message"],
        json!(
            "Event already has the requested tag attached, no changes had to be made for tag tlp:amber."
        )
    );
    let (status, _, unknown) = client
        .post(
            "/tags/attachTagToObject",
            json!({"uuid": "00000000-0000-4000-8000-000000000000", "tag": "x"}),
        )
        .await;
    let (expected_status, expected) = shape("tags_attachTagToObject_unknown_uuid");
    assert_eq!((status, unknown), (expected_status, expected));
}

#[tokio::test]
async fn refusals_use_misps_envelopes_and_unknown_endpoints_are_recorded() {
    let sim = MispSim::start(SimOptions::default()).await;
    let client = Client::new(&sim);

    let (status, body) = client.get("/events/view/999999").await;
    let (expected_status, expected) = shape("events_view_not_found");
    assert_eq!((status, body), (expected_status, expected));

    let (status, version) = client.get("/servers/getVersion").await;
    let (expected_status, expected) = shape("servers_getVersion");
    assert_eq!((status, version), (expected_status, expected));

    let wrong = Client {
        key: "A".repeat(40),
        ..Client::new(&sim)
    };
    let (status, body) = wrong.get("/events/view/12").await;
    let (expected_status, expected) = shape("auth_failed_no_or_bad_key");
    assert_eq!((status, body), (expected_status, expected));

    sim.set_permissions(misp_sim::RolePermissions::read_only());
    let (status, _, body) = client.post("/sightings/add", json!({"value": "x"})).await;
    assert_eq!(status, 403);
    assert_eq!(
        body["message"],
        json!("You do not have permission to use this functionality.")
    );
    let (_, me) = client.get("/users/view/me").await;
    assert_eq!(me["Role"]["perm_sighting"], json!(false));

    assert!(sim.unexpected_requests().is_empty());
    let (status, _) = client.get("/events/nonsense").await;
    assert_eq!(status, 404);
    let unexpected = sim.unexpected_requests();
    assert_eq!(unexpected.len(), 1);
    assert_eq!(unexpected[0].path, "/events/nonsense");
}

#[tokio::test]
async fn tls_serves_with_the_ca_and_knobs_force_answers() {
    let sim = MispSim::start(SimOptions {
        tls: true,
        ..SimOptions::default()
    })
    .await;
    let client = Client::new(&sim);
    sim.fail_next(1, 429, None);
    let (status, headers, body) = client
        .send(reqwest::Method::GET, "/servers/getVersion", None)
        .await;
    assert_eq!(status, 429);
    assert_eq!(
        headers
            .get("x-rate-limit-reset")
            .and_then(|value| value.to_str().ok()),
        Some("1")
    );
    assert_eq!(body["name"], json!("Rate limit exceeded."));
    let (status, _) = client.get("/servers/getVersion").await;
    assert_eq!(status, 200, "only one answer was forced");

    sim.drop_next(1);
    let dropped = client
        .http
        .get(format!("{}/servers/getVersion", sim.url()))
        .header("Authorization", sim.key())
        .header("Accept", "application/json")
        .send()
        .await;
    assert!(
        dropped.is_err(),
        "the connection was closed without an answer"
    );
    assert_eq!(
        sim.requests().last().and_then(|request| request.status),
        None
    );
}
