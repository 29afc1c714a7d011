//! Shared pieces of the fn_misp app: its identity, the input fields several functions share,
//! the MISP Event ID check, the event lookup and the progress text every function starts with.

use serde_json::{Value, json};
use soar_core::misp::{MispClient, MispError};
use soar_core::{
    AppInfo, FunctionContext, FunctionError, FunctionOutput, InputError, InputField, InputType,
    Inputs, SelectValue,
};

pub mod attribute;
pub mod attribute_type;
pub mod event;
pub mod indicators;
pub mod once;
pub mod tags;
pub mod warninglists;

#[cfg(feature = "test_support")]
pub mod test_support;

/// The app as SOAR and `resilient-circuits` know it.
pub static APP: AppInfo = AppInfo {
    name: "fn_misp",
    package: "fn-misp",
    version: env!("CARGO_PKG_VERSION"),
};

/// The message destination every fn_misp function is routed through.
pub const DESTINATION: &str = "fn_misp";

/// The first progress message of every function, as the original sent it.
pub const SETTING_UP_CONNECTION: &str = "Setting up connection to MISP";

/// `__function/misp_event_id`, used by create_attribute, create_tag and sighting_list.
pub static MISP_EVENT_ID: InputField = InputField {
    name: "misp_event_id",
    input_type: InputType::Number,
    required: false,
    tooltip: "",
    placeholder: "",
    values: &[],
    uuid: "21760030-8ddf-43da-84e8-5b0c63362b47",
};

/// `__function/misp_attribute_value`, used by create_attribute, create_tag and search_attribute.
pub static MISP_ATTRIBUTE_VALUE: InputField = InputField {
    name: "misp_attribute_value",
    input_type: InputType::Text,
    required: false,
    tooltip: "",
    placeholder: "",
    values: &[],
    uuid: "bde8e83c-060d-4c5a-928d-d999a97cfda0",
};

/// `__function/misp_attribute_type`, as the original create_attribute has it (search_events
/// filters by it too).
pub static MISP_ATTRIBUTE_TYPE: InputField = InputField {
    name: "misp_attribute_type",
    input_type: InputType::Text,
    required: false,
    tooltip: "",
    placeholder: "",
    values: &[],
    uuid: "d957c2b0-75fe-41b7-ac06-1ce0a7a7b251",
};

/// `__function/misp_distribution`, the original create_event's field (moved here unchanged);
/// also who sees an attribute in update_attribute.
pub static MISP_DISTRIBUTION: InputField = InputField {
    name: "misp_distribution",
    input_type: InputType::Number,
    required: false,
    tooltip: "Organization only=0",
    placeholder: "",
    values: &[],
    uuid: "347b5506-f5ae-4597-a918-e36e9fdfb79a",
};

/// `__function/misp_sighting`, the original create_sighting's value field (moved here
/// unchanged); add_sighting sights the same value.
pub static MISP_SIGHTING: InputField = InputField {
    name: "misp_sighting",
    input_type: InputType::Text,
    required: false,
    tooltip: "",
    placeholder: "",
    values: &[],
    uuid: "2e9a8d2b-9fd1-4a42-a61e-45ce8213feb7",
};

/// `__function/misp_event_uuid`: an event by UUID, where a function takes an id or a UUID.
pub static MISP_EVENT_UUID: InputField =
    InputField::text("misp_event_uuid", "518e5d33-b993-4794-a531-0c0d9115a91c")
        .tooltip("The MISP event's UUID; used when misp_event_id is not given");

/// `__function/misp_attribute_id`: an attribute by its numeric id.
pub static MISP_ATTRIBUTE_ID: InputField =
    InputField::number("misp_attribute_id", "a7521708-be66-4b03-ab5f-8775505425b9")
        .tooltip("The MISP attribute's numeric ID");

/// `__function/misp_attribute_uuid`: an attribute by UUID.
pub static MISP_ATTRIBUTE_UUID: InputField = InputField::text(
    "misp_attribute_uuid",
    "369078ac-a23f-4138-8850-6305e77f188f",
)
.tooltip("The MISP attribute's UUID");

/// `__function/misp_to_ids`: an attribute's IDS flag (empty leaves it as it is); moved here
/// unchanged from update_attribute, add_attributes sets it on every value it adds.
pub static MISP_TO_IDS: InputField =
    InputField::boolean("misp_to_ids", "c536dfc4-9d6e-4e14-b43f-1d93269f0842").tooltip(
        "Whether the attribute is an indicator for detection (to_ids); empty leaves it as it is",
    );

/// `__function/misp_comment`: an attribute's comment (empty leaves it as it is); moved here
/// unchanged from update_attribute, add_attributes sets it on every value it adds.
pub static MISP_COMMENT: InputField =
    InputField::text("misp_comment", "87a023b2-d7f8-42e3-a26c-8bc7e079c2c0")
        .tooltip("The attribute's new comment; empty leaves it as it is");

/// `__function/misp_values`: many values at once, one per line or a JSON list.
pub static MISP_VALUES: InputField =
    InputField::textarea("misp_values", "7c7acdea-acff-424a-a843-0e3b8a31108d").tooltip(
        "One value per line (defanged forms such as hxxp:// or 1.2.3[.]4 are read as the real ones), or a JSON list of values or of {\"value\", \"type\"} objects",
    );

/// `__function/misp_tag_type`, the original create_tag's choice between an event and an
/// attribute (values and UUIDs as its export has them).
pub static MISP_TAG_TYPE: InputField = InputField::select(
    "misp_tag_type",
    "a201dc94-d7f0-4b09-9e9e-7c4ba5a7a5da",
    &[
        SelectValue::new("Event", 3963, "56caee47-eded-45b5-b2dd-ce4c5a7dd1ae").as_default(),
        SelectValue::new("Attribute", 3964, "05c7115d-cf34-4da2-b04c-857394325938"),
    ],
);

/// `__function/misp_tag_name`, as the original create_tag has it.
pub static MISP_TAG_NAME: InputField =
    InputField::text("misp_tag_name", "6fdb895f-e66f-47e8-958c-3c7227218f0d");

/// `__function/misp_category`: MISP's attribute categories (describeTypes), a closed list.
pub static MISP_CATEGORY: InputField = InputField::select(
    "misp_category",
    "77309bc6-4c03-43a6-a795-a283f4ee4cab",
    MISP_CATEGORIES,
)
.tooltip("MISP attribute category");

static MISP_CATEGORIES: &[SelectValue] = &[
    SelectValue::new(
        "Internal reference",
        5001,
        "ce268ea0-6f0a-4cd7-a446-19ee321da147",
    ),
    SelectValue::new(
        "Targeting data",
        5002,
        "82ca9de5-e0ae-4a84-a2e5-d5c337734dd4",
    ),
    SelectValue::new(
        "Antivirus detection",
        5003,
        "a2c3d34e-5b02-45d8-b671-25266d5e3c42",
    ),
    SelectValue::new(
        "Payload delivery",
        5004,
        "c3445e62-62f4-47ec-a168-71ac64d4d1b8",
    ),
    SelectValue::new(
        "Artifacts dropped",
        5005,
        "ac4a7bb6-e8b1-4f74-8c07-208159ed557e",
    ),
    SelectValue::new(
        "Payload installation",
        5006,
        "72374c76-adf7-44a6-9e21-45cf0a5c16a9",
    ),
    SelectValue::new(
        "Persistence mechanism",
        5007,
        "918d134c-732f-4e64-8580-0674262c04cc",
    ),
    SelectValue::new(
        "Network activity",
        5008,
        "497925ff-5334-435e-b68d-9156bae7fa89",
    ),
    SelectValue::new("Payload type", 5009, "41fad39a-b8d3-4fde-b9b5-1f68b9c75a41"),
    SelectValue::new("Attribution", 5010, "2fcbc721-9e49-4734-a6fc-dd34646249ad"),
    SelectValue::new(
        "External analysis",
        5011,
        "af1c54b1-74bf-4b8c-b42c-19b52ff2f936",
    ),
    SelectValue::new(
        "Financial fraud",
        5012,
        "acdee8b0-5a26-45c7-bf91-5f4284619017",
    ),
    SelectValue::new("Support Tool", 5013, "693f1375-29cc-4eba-840b-42c444cb540c"),
    SelectValue::new(
        "Social network",
        5014,
        "28d828c4-8082-427e-bc92-002e6ebc1310",
    ),
    SelectValue::new("Person", 5015, "fcb1c38b-df26-4ca6-beff-e90dc67799b6"),
    SelectValue::new("Other", 5016, "5d7b9ae4-58ae-4749-81fa-36438e52dbd1"),
];

/// Sends the opening progress message and hands out the shared client, as the original's
/// "Setting up connection to MISP" step did.
pub fn connect(context: &FunctionContext) -> Result<&MispClient, FunctionError> {
    context.progress(SETTING_UP_CONNECTION);
    context.misp()
}

/// Reads `misp_event_id`, which must be given and be a whole number.
///
/// A value of the wrong type gets the original's text (typo included), because playbooks and
/// runbooks were written against it; a missing or non-positive id is an input error naming
/// the field.
pub fn required_event_id(inputs: &Inputs) -> Result<i64, FunctionError> {
    let field = MISP_EVENT_ID.name;
    let Some(raw) = inputs.raw(field) else {
        return Err(InputError::Missing {
            field: field.to_string(),
        }
        .into());
    };
    let event_id = match raw {
        Value::Number(_) => inputs
            .integer(field)
            .ok()
            .flatten()
            .ok_or_else(|| unexpected_event_id_type(raw))?,
        other => return Err(unexpected_event_id_type(other)),
    };
    if event_id < 1 {
        return Err(InputError::Invalid {
            field: field.to_string(),
            value: event_id.to_string(),
            problem: "must be a MISP event ID (1 or more)".to_string(),
        }
        .into());
    }
    Ok(event_id)
}

/// Finds the UUID of event `event_id` with `events/restSearch`, as the original did; an
/// event that does not exist (or that the key's user cannot see) is an error naming the id.
pub async fn event_uuid(client: &MispClient, event_id: i64) -> Result<String, FunctionError> {
    // `metadata` leaves out the attributes: only the UUID is needed, and events can be huge.
    // MISP's API document types ids as digit strings (MISP also takes a number).
    let events = client
        .search_events(json!({"eventid": event_id.to_string(), "metadata": true}))
        .await?;
    find_event_uuid(&events, event_id).ok_or_else(|| event_not_found(event_id))
}

/// Turns MISP refusing a request's content into a failed result carrying MISP's reason and
/// its JSON body (so scripts can read `content.errors`); any other error stays an error.
pub fn rejection_as_failure(error: MispError) -> Result<FunctionOutput, FunctionError> {
    match error {
        MispError::Rejected { message, body, .. } => Ok(FunctionOutput::failure(message, body)),
        other => Err(other.into()),
    }
}

/// Python's name for the type of a JSON value as `json.loads` would build it, e.g.
/// `<class 'str'>`, so that messages read as the original's did.
pub fn python_type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "<class 'NoneType'>",
        Value::Bool(_) => "<class 'bool'>",
        Value::Number(number) if number.is_f64() => "<class 'float'>",
        Value::Number(_) => "<class 'int'>",
        Value::String(_) => "<class 'str'>",
        Value::Array(_) => "<class 'list'>",
        Value::Object(_) => "<class 'dict'>",
    }
}

/// The error for an event id MISP does not know.
pub fn event_not_found(event_id: i64) -> FunctionError {
    FunctionError::integration(format!(
        "MISP has no event with ID {event_id}, or the API key's user cannot see it"
    ))
}

fn unexpected_event_id_type(value: &Value) -> FunctionError {
    // The run of spaces the 3.0.2 f-string had is not kept: it was an accident of a line
    // continuation, and nobody matches on whitespace.
    FunctionError::integration(format!(
        "Unexpected input type for MISP Event ID. Expected and integer, received {}",
        python_type_name(value)
    ))
}

/// The UUID of the event whose id is `event_id` in a restSearch answer. The original took the
/// last element; matching the id as well guards against a server that ignored the filter.
fn find_event_uuid(events: &Value, event_id: i64) -> Option<String> {
    let wanted = event_id.to_string();
    events
        .as_array()?
        .iter()
        .rev()
        .filter_map(|entry| entry.get("Event"))
        .find(|event| match event.get("id") {
            Some(Value::String(id)) => *id == wanted,
            Some(Value::Number(id)) => id.as_i64() == Some(event_id),
            _ => false,
        })
        .and_then(|event| event.get("uuid"))
        .and_then(Value::as_str)
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs(value: Value) -> Inputs {
        Inputs::from_value(value).expect("test inputs are an object")
    }

    fn event_id_error(value: Value) -> String {
        match required_event_id(&inputs(json!({ "misp_event_id": value }))) {
            Ok(id) => panic!("expected an error, got event id {id}"),
            Err(error) => error.to_string(),
        }
    }

    #[test]
    fn event_id_accepts_whole_numbers() {
        let read = |value: Value| required_event_id(&inputs(json!({ "misp_event_id": value })));
        assert_eq!(read(json!(10)).ok(), Some(10));
        assert_eq!(read(json!(5.0)).ok(), Some(5));
    }

    #[test]
    fn event_id_of_the_wrong_type_gets_the_original_text() {
        assert_eq!(
            event_id_error(json!("10")),
            "Unexpected input type for MISP Event ID. Expected and integer, received <class 'str'>"
        );
        assert_eq!(
            event_id_error(json!(5.5)),
            "Unexpected input type for MISP Event ID. Expected and integer, received <class 'float'>"
        );
        assert_eq!(
            event_id_error(json!(true)),
            "Unexpected input type for MISP Event ID. Expected and integer, received <class 'bool'>"
        );
        assert_eq!(
            event_id_error(json!({"id": 1})),
            "Unexpected input type for MISP Event ID. Expected and integer, received <class 'dict'>"
        );
    }

    #[test]
    fn missing_event_id_names_the_field() {
        let error = required_event_id(&inputs(json!({"misp_event_id": null})))
            .expect_err("a null event id is missing");
        assert!(matches!(
            error,
            FunctionError::Input(InputError::Missing { .. })
        ));
        assert_eq!(
            error.to_string(),
            "input 'misp_event_id' is required but was not given"
        );
    }

    #[test]
    fn non_positive_event_id_is_refused() {
        assert_eq!(
            event_id_error(json!(0)),
            "input 'misp_event_id' is 0, must be a MISP event ID (1 or more)"
        );
    }

    #[test]
    fn python_type_names_match_json_loads() {
        assert_eq!(python_type_name(&json!(null)), "<class 'NoneType'>");
        assert_eq!(python_type_name(&json!(1)), "<class 'int'>");
        assert_eq!(python_type_name(&json!(1.5)), "<class 'float'>");
        assert_eq!(python_type_name(&json!([])), "<class 'list'>");
        assert_eq!(python_type_name(&json!("x")), "<class 'str'>");
    }

    #[test]
    fn event_uuid_is_taken_from_the_event_with_that_id() {
        let events = json!([
            {"Event": {"id": "9", "uuid": "uuid-9"}},
            {"Event": {"id": "10", "uuid": "uuid-10"}},
            {"Event": {"id": 11, "uuid": "uuid-11"}},
        ]);
        assert_eq!(find_event_uuid(&events, 10).as_deref(), Some("uuid-10"));
        assert_eq!(find_event_uuid(&events, 11).as_deref(), Some("uuid-11"));
        assert_eq!(find_event_uuid(&events, 12), None);
        assert_eq!(find_event_uuid(&json!({"Event": {}}), 10), None);
        assert_eq!(find_event_uuid(&json!([]), 10), None);
    }

    #[test]
    fn rejection_becomes_a_failed_result_with_misps_body() {
        let body = json!({"saved": false, "errors": {"value": ["A similar attribute already exists for this event."]}});
        let output = rejection_as_failure(MispError::Rejected {
            method: "POST".into(),
            path: "/attributes/add/u".into(),
            status: 403,
            message: "Could not add Attribute".into(),
            body: body.clone(),
        })
        .expect("a rejection is a result");
        assert_eq!(
            output,
            FunctionOutput::failure("Could not add Attribute", body)
        );
        let error = rejection_as_failure(MispError::NotFound {
            path: "/attributes/add/u".into(),
            message: "Invalid event".into(),
        })
        .expect_err("not found stays an error");
        assert!(matches!(
            error,
            FunctionError::Misp(MispError::NotFound { .. })
        ));
    }

    #[test]
    fn app_is_fn_misp_at_the_workspace_version() {
        assert_eq!(APP.name, "fn_misp");
        assert_eq!(APP.package, "fn-misp");
        assert_eq!(APP.version, env!("CARGO_PKG_VERSION"));
        assert_eq!(DESTINATION, APP.name);
    }
}
