//! The `misp_create_attribute` function: adds an artifact's value to a MISP event.

use fn_misp::{APP, DESTINATION, MISP_ATTRIBUTE_TYPE, MISP_ATTRIBUTE_VALUE, MISP_EVENT_ID};
use serde_json::{Value, json};
use soar_core::misp::{Method, MispClient, MispError, NewAttribute, Repeat};
use soar_core::{
    Function, FunctionContext, FunctionDefinition, FunctionError, FunctionOutput, Inputs,
};

/// Adds an attribute to an event (`POST /attributes/add/{event uuid}`) and returns MISP's
/// `{"Attribute": …}`; a value MISP refuses is a failed result carrying MISP's `errors`.
#[derive(Debug, Clone, Copy)]
pub struct MispCreateAttribute;

/// The definition of the original fn_misp 3.0.2 export.
pub static DEFINITION: FunctionDefinition = FunctionDefinition {
    name: "misp_create_attribute",
    display_name: "MISP Create Attribute",
    description: "Create a MISP attribute from an incident artifact",
    destination: DESTINATION,
    uuid: "f5c4aae2-135e-41ac-8bbc-082b00677ecb",
    app: &APP,
    inputs: &[MISP_EVENT_ID, MISP_ATTRIBUTE_VALUE, MISP_ATTRIBUTE_TYPE],
};

soar_core::register_function!(MispCreateAttribute);

#[soar_core::async_trait]
impl Function for MispCreateAttribute {
    fn definition(&self) -> &'static FunctionDefinition {
        &DEFINITION
    }

    async fn run(
        &self,
        context: &FunctionContext,
        inputs: &Inputs,
    ) -> Result<FunctionOutput, FunctionError> {
        let event_id = fn_misp::required_event_id(inputs)?;
        let attribute = new_attribute(inputs)?;
        let client = fn_misp::connect(context)?;
        context.progress(format!(
            "Creating new misp attribute {} {}",
            attribute.attribute_type, attribute.value
        ));
        let event_uuid = fn_misp::event_uuid(client, event_id).await?;
        let created = match fn_misp::once::call_uuid(context.origin(), DEFINITION.name, inputs) {
            None => client.add_attribute(&event_uuid, &attribute).await,
            Some(uuid) => create_once(client, &event_uuid, &attribute, &uuid.to_string()).await,
        };
        match created {
            Ok(created) => {
                context.progress("Attribute has been created");
                Ok(FunctionOutput::success(created))
            }
            // A duplicate or malformed value is an answer, not a crash: playbooks read
            // `content.errors.value` to tell the analyst why.
            Err(error) => fn_misp::rejection_as_failure(error),
        }
    }
}

/// The attribute the inputs describe; the type must be one MISP knows.
/// `POST /attributes/add/{event}` with the call's own UUID: a retried or redelivered call
/// answers with the attribute its first attempt created, in the add's own shape.
async fn create_once(
    client: &MispClient,
    event_uuid: &str,
    attribute: &NewAttribute,
    uuid: &str,
) -> Result<Value, MispError> {
    let body = json!({"type": attribute.attribute_type, "value": attribute.value, "uuid": uuid});
    let read_back = || async {
        let view = fn_misp::once::absent_as_none(
            client
                .request(
                    Method::GET,
                    &["attributes", "view", uuid],
                    None,
                    Repeat::Safe,
                )
                .await,
        )?;
        Ok(view.map(as_add_answer))
    };
    fn_misp::once::create_once(client, &["attributes", "add", event_uuid], &body, read_back).await
}

/// `attributes/view`'s `{"Attribute": …}` in the shape `attributes/add` answers with:
/// `value1`/`value2`, no nested lists, and an empty `AttributeTag`.
fn as_add_answer(view: Value) -> Value {
    let mut attribute = view.get("Attribute").cloned().unwrap_or(view);
    if let Value::Object(fields) = &mut attribute {
        for nested in [
            "Tag",
            "Galaxy",
            "ShadowAttribute",
            "Sighting",
            "Event",
            "Object",
        ] {
            fields.remove(nested);
        }
        let value = fields
            .get("value")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let composite = fields
            .get("type")
            .and_then(Value::as_str)
            .is_some_and(|kind| kind.contains('|'));
        let (first, second) = match value.split_once('|') {
            Some((first, second)) if composite => (first.to_string(), second.to_string()),
            _ => (value.clone(), String::new()),
        };
        fields.entry("value1").or_insert(json!(first));
        fields.entry("value2").or_insert(json!(second));
    }
    json!({"Attribute": attribute, "AttributeTag": []})
}

fn new_attribute(inputs: &Inputs) -> Result<NewAttribute, FunctionError> {
    let value = inputs.required_text(MISP_ATTRIBUTE_VALUE.name)?;
    // Stray spaces from a script or a copy and paste are not part of any MISP type.
    let attribute_type =
        fn_misp::attribute_type::checked(&inputs.required_text(MISP_ATTRIBUTE_TYPE.name)?)?;
    Ok(NewAttribute {
        attribute_type,
        value,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs(value: Value) -> Inputs {
        Inputs::from_value(value).expect("test inputs are an object")
    }

    #[test]
    fn a_viewed_attribute_reads_as_the_add_answer() {
        let view = json!({"Attribute": {"id": "3", "type": "filename|md5", "value": "a.exe|0123", "Tag": [], "Event": {}}});
        assert_eq!(
            as_add_answer(view),
            json!({"Attribute": {"id": "3", "type": "filename|md5", "value": "a.exe|0123", "value1": "a.exe", "value2": "0123"}, "AttributeTag": []})
        );
    }

    #[test]
    fn the_original_test_types_are_accepted() {
        for attribute_type in [
            "filename",
            "text",
            "ip-dst",
            "hostname",
            "md5",
            "named pipe",
        ] {
            let attribute = new_attribute(&inputs(json!({
                "misp_attribute_value": "sample text",
                "misp_attribute_type": attribute_type,
            })))
            .unwrap_or_else(|error| panic!("{attribute_type} should be accepted: {error}"));
            assert_eq!(attribute.attribute_type, attribute_type);
            assert_eq!(attribute.value, "sample text");
        }
    }

    #[test]
    fn unknown_type_suggests_the_closest_types() {
        let error = new_attribute(&inputs(json!({
            "misp_attribute_value": "1.1.1.1",
            "misp_attribute_type": "ip_dst",
        })))
        .expect_err("ip_dst is not a MISP type");
        let message = error.to_string();
        assert!(
            message.starts_with(
                "input 'misp_attribute_type' is \"ip_dst\", not a MISP attribute type; closest: ip-dst"
            ),
            "unexpected message: {message}"
        );
    }

    #[test]
    fn surrounding_spaces_are_ignored() {
        let attribute = new_attribute(&inputs(json!({
            "misp_attribute_value": "https://example.org/",
            "misp_attribute_type": " url ",
        })))
        .expect("' url ' is url");
        assert_eq!(attribute.attribute_type, "url");
    }

    #[test]
    fn value_and_type_are_required() {
        let error = new_attribute(&inputs(json!({"misp_attribute_type": "md5"})))
            .expect_err("value is required");
        assert_eq!(
            error.to_string(),
            "input 'misp_attribute_value' is required but was not given"
        );
        let error = new_attribute(&inputs(json!({"misp_attribute_value": "x"})))
            .expect_err("type is required");
        assert_eq!(
            error.to_string(),
            "input 'misp_attribute_type' is required but was not given"
        );
    }
}
