//! Taking tags off (`tags/removeTagFromObject`, and the older `events/removeTag` and
//! `attributes/removeTag`) and publishing events (`events/publish`, `events/alert`), with
//! MISP 2.5's statuses and texts as its TagsController, EventsController and
//! AttributesController have them.
//!
//! The simulated MISP runs without background workers, so a publish happens at once and
//! answers "Event published without alerts" (with workers MISP answers "Job queued" and
//! publishes later), and an alert answers "Email sent to all participants.".

use axum::http::Method;
use serde_json::{Value, json};

use super::{
    ACL_FAILED, INTERNAL_ERROR, INVALID_JSON, Reply, State, Target, error, like, now, ok,
    unwrap_object, value_text,
};

const POST_ONLY: &str = "This method is only accessible via POST requests.";
const NOT_ATTACHED: &str = "Could not remove tag as it is not attached to the target";
const PUBLISHED: &str = "Event published without alerts";
const ALERTED: &str = "Email sent to all participants.";
const URL: &str = "/tags/removeTagFromObject";

impl State {
    /// Answers this module's endpoints; `segments` is the path split at `/`, the action
    /// without `.json`.
    pub(super) fn answer_tags_publish(
        &mut self,
        method: &Method,
        segments: &[&str],
        body: &Value,
        needs_json: bool,
        path: &str,
    ) -> Reply {
        let post = method == Method::POST;
        let permissions = self.permissions;
        let route = (
            segments.first().copied().unwrap_or_default(),
            segments.get(1).copied().unwrap_or_default(),
        );
        let (allowed, handler): (bool, fn(&mut State, Request<'_>) -> Reply) = match route {
            ("tags", "removeTagFromObject") => (permissions.tagger, State::remove_tag_from_object),
            ("events", "removeTag") => (permissions.tagger, State::remove_event_tag),
            ("attributes", "removeTag") => (permissions.tagger, State::remove_attribute_tag),
            _ => (permissions.publish, State::publish_event),
        };
        // MISP checks the role, then the JSON, then lets the action look at the method.
        if !allowed {
            return error(403, ACL_FAILED, path);
        }
        if needs_json {
            return error(405, INVALID_JSON, path);
        }
        let request = Request {
            // A form's PUT counts as a POST for the publish actions.
            post: post || method == Method::PUT,
            action: route.1,
            arguments: segments.get(2..).unwrap_or_default(),
            body,
            path,
        };
        handler(self, request)
    }

    /// `POST /tags/removeTagFromObject` with `{"uuid", "tag"}` (a tag name or id).
    fn remove_tag_from_object(&mut self, request: Request<'_>) -> Reply {
        let path = request.path;
        if !request.post {
            return error(405, POST_ONLY, path);
        }
        let body = unwrap_object(request.body.clone(), &["request"]);
        let field = |name: &str| {
            body.get(name)
                .map(value_text)
                .filter(|text| !text.is_empty())
        };
        let Some(uuid) = field("uuid") else {
            return error(405, "Invalid object uuid", path);
        };
        if uuid::Uuid::parse_str(&uuid).is_err() {
            // MISP throws InvalidArgumentException, which reaches the client as a 500.
            return error(500, INTERNAL_ERROR, path);
        }
        let Some(tag_reference) = field("tag") else {
            return error(405, "Invalid tag", path);
        };
        let Some(tag_index) = self.tag_by_reference(&tag_reference) else {
            return error(405, "Invalid Tag.", path);
        };
        let target = match self.event_by_uuid(&uuid) {
            Some(index) => Target::Event(index),
            None => match self.attribute_by_uuid(&uuid) {
                Some((event, attribute)) => Target::Attribute(event, attribute),
                None => return error(404, "Invalid Target.", path),
            },
        };
        let tag = self.tags[tag_index].clone();
        let tag_id = tag.get("id").map(value_text).unwrap_or_default();
        let tag_name = tag.get("name").map(value_text).unwrap_or_default();
        let kind = match target {
            Target::Event(_) => "Event",
            Target::Attribute(..) => "Attribute",
        };
        let object = self.target_object(&target);
        let object_id = object.get("id").map(value_text).unwrap_or_default();
        let Some(local) = take_tag(object, &tag_id) else {
            return error(404, &format!("{NOT_ATTACHED} {kind}"), path);
        };
        if !local {
            self.touch(&target);
        }
        let scope = if local { "Local" } else { "Global" };
        let message = format!(
            "{scope} tag {tag_name} ({tag_id}) successfully removed from {kind}({object_id})."
        );
        ok(json!({
            "saved": true,
            "success": true,
            "name": message,
            "message": message,
            "url": URL,
        }))
    }

    /// `POST /events/removeTag[/{event_id}/{tag}]`, body `{"event", "tag"}`: failures are
    /// HTTP 200 with `saved: false`.
    fn remove_event_tag(&mut self, request: Request<'_>) -> Reply {
        let path = request.path;
        let body = unwrap_object(request.body.clone(), &["request", "Event"]);
        let event_reference = request
            .arguments
            .first()
            .map(|text| text.to_string())
            .or_else(|| aliased(&body, &["event", "event_id", "id"]));
        let tag_reference = request
            .arguments
            .get(1)
            .map(|text| text.to_string())
            .or_else(|| aliased(&body, &["tag", "tag_id"]));
        if !request.post {
            // The confirmation form MISP renders has no JSON view.
            let Some(event) = event_reference.and_then(|id| self.event_index(&id)) else {
                return error(404, "Invalid event.", path);
            };
            let attached = tag_reference
                .and_then(|tag| take_tag(&mut self.events[event].clone(), &tag))
                .is_some();
            return match attached {
                true => error(500, INTERNAL_ERROR, path),
                false => error(404, "Invalid tag.", path),
            };
        }
        let Some(tag_index) = tag_reference
            .filter(|tag| !tag.is_empty())
            .and_then(|tag| self.tag_by_reference(&tag))
        else {
            return soft_failure("Invalid Tag.");
        };
        // MISP reads the event by numeric id only here; anything else finds no tag on it.
        let event = event_reference
            .filter(|id| id.bytes().all(|byte| byte.is_ascii_digit()))
            .and_then(|id| self.event_index(&id));
        let tag_id = self.tags[tag_index]
            .get("id")
            .map(value_text)
            .unwrap_or_default();
        let Some(event) = event else {
            return soft_failure("Invalid event - tag combination.");
        };
        let target = Target::Event(event);
        let Some(local) = take_tag(self.target_object(&target), &tag_id) else {
            return soft_failure("Invalid event - tag combination.");
        };
        if !local {
            self.touch(&target);
        }
        ok(json!({"saved": true, "success": "Tag removed.", "check_publish": !local}))
    }

    /// `POST /attributes/removeTag[/{attribute_id}/{tag}]`, body `{"attribute", "tag"}`.
    fn remove_attribute_tag(&mut self, request: Request<'_>) -> Reply {
        let path = request.path;
        let body = unwrap_object(request.body.clone(), &["request", "Attribute"]);
        let attribute_reference = request
            .arguments
            .first()
            .map(|text| text.to_string())
            .or_else(|| aliased(&body, &["attribute", "attribute_id", "id"]));
        let tag_reference = request
            .arguments
            .get(1)
            .map(|text| text.to_string())
            .or_else(|| aliased(&body, &["tag", "tag_id"]));
        let Some(attribute_reference) = attribute_reference else {
            return error(404, "Invalid attribute", path);
        };
        let found = self.attribute_by_id(&attribute_reference).or_else(|| {
            self.attribute_by_uuid(&attribute_reference)
                .filter(|_| !request.post)
        });
        if !request.post {
            let Some((event, attribute)) = found else {
                return error(404, "Invalid attribute", path);
            };
            let mut object = self.events[event]["Attribute"][attribute].clone();
            let attached = tag_reference
                .and_then(|tag| take_tag(&mut object, &tag))
                .is_some();
            return match attached {
                true => error(500, INTERNAL_ERROR, path),
                false => error(404, "Invalid tag.", path),
            };
        }
        let Some(tag_reference) = tag_reference else {
            return error(404, "Invalid tag", path);
        };
        let deleted = |(event, attribute): (usize, usize)| {
            super::truthy(&self.events[event]["Attribute"][attribute]["deleted"])
        };
        let Some(position) = found.filter(|position| !deleted(*position)) else {
            return error(404, "Invalid attribute", path);
        };
        let Some(tag_index) = Some(tag_reference)
            .filter(|tag| !tag.is_empty())
            .and_then(|tag| self.tag_by_reference(&tag))
        else {
            return soft_failure("Invalid Tag.");
        };
        let tag_id = self.tags[tag_index]
            .get("id")
            .map(value_text)
            .unwrap_or_default();
        let target = Target::Attribute(position.0, position.1);
        let Some(local) = take_tag(self.target_object(&target), &tag_id) else {
            return soft_failure("Invalid attribute - tag combination.");
        };
        if !local {
            self.touch(&target);
        }
        ok(json!({"saved": true, "success": "Tag removed.", "check_publish": !local}))
    }

    /// `POST /events/publish/{id|uuid}` and `POST /events/alert/{id|uuid}`, body empty.
    fn publish_event(&mut self, request: Request<'_>) -> Reply {
        let path = request.path;
        let Some(index) = request
            .arguments
            .first()
            .and_then(|reference| self.event_index(reference))
        else {
            return error(404, "Invalid event.", path);
        };
        if !request.post {
            // MISP renders its confirmation form, which has no JSON view.
            return error(500, INTERNAL_ERROR, path);
        }
        let event = &mut self.events[index];
        event["published"] = json!(true);
        event["publish_timestamp"] = json!(now().to_string());
        let id = event.get("id").map(value_text).unwrap_or_default();
        let message = if request.action == "alert" {
            ALERTED
        } else {
            PUBLISHED
        };
        ok(json!({
            "saved": true,
            "success": true,
            "name": message,
            "message": message,
            "url": format!("/events/{}/{id}", request.action),
            "id": id,
        }))
    }

    /// A tag definition by numeric id, else by name as MISP's `LOWER(name) LIKE` finds it.
    fn tag_by_reference(&self, reference: &str) -> Option<usize> {
        let reference = reference.trim();
        if !reference.is_empty() && reference.bytes().all(|byte| byte.is_ascii_digit()) {
            return self
                .tags
                .iter()
                .position(|tag| tag.get("id").map(value_text).as_deref() == Some(reference));
        }
        self.tags.iter().position(|tag| {
            tag.get("name")
                .and_then(Value::as_str)
                .is_some_and(|name| like(reference, name))
        })
    }

    fn attribute_by_id(&self, id: &str) -> Option<(usize, usize)> {
        self.events
            .iter()
            .enumerate()
            .find_map(|(event_index, event)| {
                event
                    .get("Attribute")
                    .and_then(Value::as_array)?
                    .iter()
                    .position(|attribute| {
                        attribute.get("id").map(value_text).as_deref() == Some(id)
                    })
                    .map(|attribute_index| (event_index, attribute_index))
            })
    }

    fn target_object(&mut self, target: &Target) -> &mut Value {
        match *target {
            Target::Event(index) => &mut self.events[index],
            Target::Attribute(event, attribute) => &mut self.events[event]["Attribute"][attribute],
        }
    }

    /// What a global tag change does besides: the event is unpublished; an attribute's
    /// timestamp moves, and so does its event's.
    fn touch(&mut self, target: &Target) {
        let timestamp = json!(now().to_string());
        let event = match *target {
            Target::Event(index) => index,
            Target::Attribute(event, attribute) => {
                self.events[event]["Attribute"][attribute]["timestamp"] = timestamp.clone();
                event
            }
        };
        self.events[event]["published"] = json!(false);
        self.events[event]["timestamp"] = timestamp;
    }
}

impl crate::MispSim {
    /// Defines a tag without attaching it anywhere (as `tags/add` would) and returns its id.
    pub fn seed_tag(&self, name: &str) -> String {
        let mut state = self.shared.lock();
        let index = state.find_or_create_tag(name);
        state.tags[index]
            .get("id")
            .map(value_text)
            .unwrap_or_default()
    }

    /// The names of the tags on the event or attribute with `uuid`, in the order attached;
    /// `None` when there is no such object.
    pub fn tags_of(&self, uuid: &str) -> Option<Vec<String>> {
        let state = self.shared.lock();
        let object = match state.event_by_uuid(uuid) {
            Some(index) => &state.events[index],
            None => {
                let (event, attribute) = state.attribute_by_uuid(uuid)?;
                &state.events[event]["Attribute"][attribute]
            }
        };
        Some(
            object
                .get("Tag")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|tag| tag.get("name").map(value_text))
                .collect(),
        )
    }
}

/// One request to this module's endpoints, as the handlers need it.
struct Request<'a> {
    post: bool,
    action: &'a str,
    /// The path's segments after the action.
    arguments: &'a [&'a str],
    body: &'a Value,
    path: &'a str,
}

/// Removes the tag with `tag_id` from `object` and says whether it was local; `None` when the
/// object does not carry it.
fn take_tag(object: &mut Value, tag_id: &str) -> Option<bool> {
    let tags = object.get_mut("Tag")?.as_array_mut()?;
    let position = tags
        .iter()
        .position(|tag| tag.get("id").map(value_text).as_deref() == Some(tag_id))?;
    let removed = tags.remove(position);
    Some(removed.get("local").is_some_and(super::truthy))
}

/// The first of `names` in `body`, as MISP's RequestRearrangeTool maps aliases.
fn aliased(body: &Value, names: &[&str]) -> Option<String> {
    names
        .iter()
        .find_map(|name| body.get(*name).filter(|value| !value.is_null()))
        .map(value_text)
}

/// The older tag endpoints' failure: HTTP 200 with `saved: false`.
fn soft_failure(errors: &str) -> Reply {
    ok(json!({"saved": false, "errors": errors}))
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use crate::{MispSim, RolePermissions, SimOptions};

    async fn send(
        sim: &MispSim,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::new();
        let mut request = client
            .request(method, format!("{}{path}", sim.url()))
            .header("Authorization", sim.key())
            .header("Accept", "application/json")
            .header("Content-Type", "application/json");
        if let Some(body) = body.filter(|body| !body.is_null()) {
            request = request.body(body.to_string());
        }
        let response = request.send().await.expect("the sim answers");
        let status = response.status().as_u16();
        let text = response.text().await.expect("a body");
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    async fn post(sim: &MispSim, path: &str, body: Value) -> (u16, Value) {
        send(sim, reqwest::Method::POST, path, Some(body)).await
    }

    fn envelope(message: &str, url: &str) -> Value {
        json!({"name": message, "message": message, "url": url})
    }

    /// Event 12 tagged `tlp:white` (global) and `internal` (local), with attribute 40
    /// tagged `malicious`.
    async fn tagged_sim() -> (MispSim, String, String) {
        let sim = MispSim::start(SimOptions::default()).await;
        sim.seed_event(json!({"id": "12", "info": "tagged", "published": true,
            "Tag": [{"name": "tlp:white"}, {"name": "internal", "local": true}],
            "Attribute": [{"id": "40", "type": "ip-dst", "value": "203.0.113.9", "Tag": [{"name": "malicious"}]}]}));
        let event = &sim.events()[0]["Event"];
        let event_uuid = event["uuid"].as_str().expect("a uuid").to_string();
        let attribute_uuid = event["Attribute"][0]["uuid"]
            .as_str()
            .expect("a uuid")
            .to_string();
        (sim, event_uuid, attribute_uuid)
    }

    #[tokio::test]
    async fn remove_tag_from_object_answers_as_misps_tags_controller() {
        let (sim, event_uuid, attribute_uuid) = tagged_sim().await;
        let tlp_white = sim.seed_tag("tlp:white");
        let (status, body) = post(
            &sim,
            "/tags/removeTagFromObject",
            json!({"uuid": event_uuid, "tag": "TLP:WHITE"}),
        )
        .await;
        let message =
            format!("Global tag tlp:white ({tlp_white}) successfully removed from Event(12).");
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            body,
            json!({"saved": true, "success": true, "name": message, "message": message, "url": "/tags/removeTagFromObject"})
        );
        assert_eq!(sim.tags_of(&event_uuid), Some(vec!["internal".to_string()]));
        assert_eq!(
            sim.events()[0]["Event"]["published"],
            json!(false),
            "a global tag change unpublishes"
        );

        let (status, body) = post(
            &sim,
            "/tags/removeTagFromObject",
            json!({"uuid": event_uuid, "tag": "tlp:white"}),
        )
        .await;
        assert_eq!(
            (status, body),
            (
                404,
                envelope(
                    "Could not remove tag as it is not attached to the target Event",
                    "/tags/removeTagFromObject"
                )
            )
        );

        let internal = sim.seed_tag("internal");
        let (status, body) = post(
            &sim,
            "/tags/removeTagFromObject",
            json!({"uuid": event_uuid, "tag": internal}),
        )
        .await;
        assert_eq!(status, 200);
        assert!(
            body["message"]
                .as_str()
                .is_some_and(|text| text.starts_with("Local tag internal")),
            "{body}"
        );

        let (status, body) = post(
            &sim,
            "/tags/removeTagFromObject",
            json!({"uuid": attribute_uuid, "tag": "malicious"}),
        )
        .await;
        assert_eq!(status, 200);
        assert!(
            body["message"]
                .as_str()
                .is_some_and(|text| text.ends_with("successfully removed from Attribute(40).")),
            "{body}"
        );
        assert_eq!(sim.tags_of(&attribute_uuid), Some(vec![]));
        let (status, body) = post(
            &sim,
            "/tags/removeTagFromObject",
            json!({"uuid": attribute_uuid, "tag": "malicious"}),
        )
        .await;
        assert_eq!(
            (status, body["message"].clone()),
            (
                404,
                json!("Could not remove tag as it is not attached to the target Attribute")
            )
        );
    }

    #[tokio::test]
    async fn remove_tag_from_object_refuses_like_misp() {
        let (sim, event_uuid, _) = tagged_sim().await;
        let url = "/tags/removeTagFromObject";
        let cases = [
            (json!({"tag": "tlp:white"}), 405, "Invalid object uuid"),
            (json!({"uuid": event_uuid}), 405, "Invalid tag"),
            (
                json!({"uuid": event_uuid, "tag": "no-such-tag"}),
                405,
                "Invalid Tag.",
            ),
            (
                json!({"uuid": "8c3b5c0e-0000-4000-8000-000000000000", "tag": "tlp:white"}),
                404,
                "Invalid Target.",
            ),
            (
                json!({"uuid": "not-a-uuid", "tag": "tlp:white"}),
                500,
                "An Internal Error Has Occurred.",
            ),
        ];
        for (body, status, message) in cases {
            assert_eq!(
                post(&sim, url, body.clone()).await,
                (status, envelope(message, url)),
                "for {body}"
            );
        }
        let (status, body) = send(&sim, reqwest::Method::GET, url, None).await;
        assert_eq!(
            (status, body),
            (
                405,
                envelope("This method is only accessible via POST requests.", url)
            )
        );
        sim.set_permissions(RolePermissions {
            tagger: false,
            ..RolePermissions::all()
        });
        let (status, body) = post(&sim, url, json!({"uuid": event_uuid, "tag": "tlp:white"})).await;
        assert_eq!(
            (status, body),
            (
                403,
                envelope("You do not have permission to use this functionality.", url)
            )
        );
        assert_eq!(
            sim.tags_of(&event_uuid),
            Some(vec!["tlp:white".to_string(), "internal".to_string()])
        );
        assert!(sim.unexpected_requests().is_empty());
    }

    #[tokio::test]
    async fn the_older_remove_tag_endpoints_fail_softly_with_http_200() {
        let (sim, event_uuid, attribute_uuid) = tagged_sim().await;
        let white = sim.seed_tag("tlp:white");
        let malicious = sim.seed_tag("malicious");
        assert_eq!(
            post(
                &sim,
                "/events/removeTag",
                json!({"event": 12, "tag": "nope"})
            )
            .await,
            (200, json!({"saved": false, "errors": "Invalid Tag."}))
        );
        assert_eq!(
            post(
                &sim,
                "/events/removeTag",
                json!({"event": 99, "tag": white})
            )
            .await,
            (
                200,
                json!({"saved": false, "errors": "Invalid event - tag combination."})
            )
        );
        assert_eq!(
            post(&sim, &format!("/events/removeTag/12/{white}"), json!({})).await,
            (
                200,
                json!({"saved": true, "success": "Tag removed.", "check_publish": true})
            )
        );
        assert_eq!(sim.tags_of(&event_uuid), Some(vec!["internal".to_string()]));
        assert_eq!(
            post(
                &sim,
                "/attributes/removeTag",
                json!({"attribute": 99, "tag": malicious})
            )
            .await,
            (404, envelope("Invalid attribute", "/attributes/removeTag"))
        );
        assert_eq!(
            post(
                &sim,
                "/attributes/removeTag",
                json!({"attribute": 40, "tag": "malicious"})
            )
            .await,
            (
                200,
                json!({"saved": true, "success": "Tag removed.", "check_publish": true})
            )
        );
        assert_eq!(
            post(
                &sim,
                "/attributes/removeTag",
                json!({"attribute": 40, "tag": "malicious"})
            )
            .await,
            (
                200,
                json!({"saved": false, "errors": "Invalid attribute - tag combination."})
            )
        );
        assert_eq!(sim.tags_of(&attribute_uuid), Some(vec![]));
    }

    #[tokio::test]
    async fn publish_and_alert_flip_published_and_answer_with_misps_envelope() {
        let sim = MispSim::start(SimOptions::default()).await;
        let id = sim.seed_event(json!({"info": "draft"}));
        let uuid = sim.events()[0]["Event"]["uuid"]
            .as_str()
            .expect("a uuid")
            .to_string();
        assert_eq!(sim.events()[0]["Event"]["publish_timestamp"], json!("0"));
        let (status, body) = post(&sim, &format!("/events/publish/{id}"), Value::Null).await;
        assert_eq!(status, 200);
        assert_eq!(
            body,
            json!({"saved": true, "success": true, "name": "Event published without alerts",
            "message": "Event published without alerts", "url": format!("/events/publish/{id}"), "id": id})
        );
        let event = &sim.events()[0]["Event"];
        assert_eq!(event["published"], json!(true));
        assert_ne!(event["publish_timestamp"], json!("0"));

        let (status, body) = post(&sim, &format!("/events/alert/{uuid}"), Value::Null).await;
        assert_eq!(status, 200);
        assert_eq!(body["message"], json!("Email sent to all participants."));
        assert_eq!(body["url"], json!(format!("/events/alert/{id}")));
    }

    #[tokio::test]
    async fn publish_refuses_unknown_events_gets_and_roles_without_the_flag() {
        let sim = MispSim::start(SimOptions::default()).await;
        let id = sim.seed_event(json!({"info": "draft"}));
        assert_eq!(
            post(&sim, "/events/publish/999", Value::Null).await,
            (404, envelope("Invalid event.", "/events/publish/999"))
        );
        assert_eq!(
            send(
                &sim,
                reqwest::Method::GET,
                &format!("/events/publish/{id}"),
                None
            )
            .await,
            (
                500,
                envelope(
                    "An Internal Error Has Occurred.",
                    &format!("/events/publish/{id}")
                )
            )
        );
        sim.set_permissions(RolePermissions {
            publish: false,
            ..RolePermissions::all()
        });
        assert_eq!(
            post(&sim, &format!("/events/alert/{id}"), Value::Null).await,
            (
                403,
                envelope(
                    "You do not have permission to use this functionality.",
                    &format!("/events/alert/{id}")
                )
            )
        );
        assert_eq!(sim.events()[0]["Event"]["published"], json!(false));
        assert!(sim.unexpected_requests().is_empty());
    }
}
