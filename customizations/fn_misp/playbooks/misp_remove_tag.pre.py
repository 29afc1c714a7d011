#: Playbook misp_remove_tag: the input script of its function step.
#: The tag analysts put on a suspect value; use the one your MISP uses.
inputs.misp_tag_type = "Attribute"
inputs.misp_tag_name = "malicious"
inputs.misp_event_id = incident.properties.misp_event_id
inputs.misp_attribute_value = artifact.value
