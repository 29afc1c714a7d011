//! Which event a function acts on: by id or by UUID, read from the inputs once.

use soar_core::{FunctionError, InputError, Inputs};

use crate::{MISP_EVENT_ID, MISP_EVENT_UUID};

/// An event as the inputs name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventRef {
    /// `misp_event_id`.
    Id(i64),
    /// `misp_event_uuid`.
    Uuid(String),
}

impl EventRef {
    /// Reads `misp_event_id` (checked as [`crate::required_event_id`] does), else
    /// `misp_event_uuid`; neither is an error naming both.
    pub fn from_inputs(inputs: &Inputs) -> Result<EventRef, FunctionError> {
        if inputs.raw(MISP_EVENT_ID.name).is_some() {
            return Ok(EventRef::Id(crate::required_event_id(inputs)?));
        }
        let Some(uuid) = inputs.text(MISP_EVENT_UUID.name)? else {
            return Err(InputError::Missing {
                field: format!("{}' or '{}", MISP_EVENT_ID.name, MISP_EVENT_UUID.name),
            }
            .into());
        };
        let uuid = uuid.trim().to_string();
        if uuid::Uuid::parse_str(&uuid).is_err() {
            return Err(InputError::Invalid {
                field: MISP_EVENT_UUID.name.to_string(),
                value: uuid,
                problem: "is not a UUID".to_string(),
            }
            .into());
        }
        Ok(EventRef::Uuid(uuid))
    }

    /// The id or UUID as a path segment: `events/view/{this}`.
    pub fn segment(&self) -> String {
        match self {
            EventRef::Id(id) => id.to_string(),
            EventRef::Uuid(uuid) => uuid.clone(),
        }
    }

    /// How a message names the event: `event 12` or `event <uuid>`.
    pub fn describe(&self) -> String {
        format!("event {}", self.segment())
    }

    /// The error for an event MISP does not know (or does not show this key's user).
    pub fn not_found(&self) -> FunctionError {
        match self {
            EventRef::Id(id) => crate::event_not_found(*id),
            EventRef::Uuid(uuid) => FunctionError::integration(format!(
                "MISP has no event with UUID {uuid}, or the API key's user cannot see it"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn reference(value: Value) -> Result<EventRef, String> {
        let inputs = Inputs::from_value(value).expect("test inputs are an object");
        EventRef::from_inputs(&inputs).map_err(|error| error.to_string())
    }

    #[test]
    fn the_id_wins_over_the_uuid() {
        let uuid = "5b646415-7b48-40d5-86b4-c0070acd0835";
        assert_eq!(
            reference(json!({"misp_event_id": 60, "misp_event_uuid": uuid})),
            Ok(EventRef::Id(60))
        );
        assert_eq!(
            reference(json!({"misp_event_uuid": format!(" {uuid} ")})),
            Ok(EventRef::Uuid(uuid.to_string()))
        );
        assert_eq!(EventRef::Id(60).describe(), "event 60");
        assert_eq!(EventRef::Uuid(uuid.to_string()).segment(), uuid);
    }

    #[test]
    fn a_missing_or_bad_reference_names_the_fields() {
        assert_eq!(
            reference(json!({})).expect_err("nothing given"),
            "input 'misp_event_id' or 'misp_event_uuid' is required but was not given"
        );
        assert_eq!(
            reference(json!({"misp_event_uuid": "60"})).expect_err("not a uuid"),
            "input 'misp_event_uuid' is 60, is not a UUID"
        );
        assert_eq!(
            reference(json!({"misp_event_id": "60"})).expect_err("a string id"),
            "Unexpected input type for MISP Event ID. Expected and integer, received <class 'str'>"
        );
    }

    #[test]
    fn unknown_events_are_named_in_the_error() {
        assert_eq!(
            EventRef::Uuid("5b646415-7b48-40d5-86b4-c0070acd0835".into())
                .not_found()
                .to_string(),
            "MISP has no event with UUID 5b646415-7b48-40d5-86b4-c0070acd0835, or the API key's user cannot see it"
        );
        assert_eq!(
            EventRef::Id(7).not_found().to_string(),
            "MISP has no event with ID 7, or the API key's user cannot see it"
        );
    }
}
