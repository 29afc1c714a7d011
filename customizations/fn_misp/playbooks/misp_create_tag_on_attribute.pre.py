#: Playbook misp_create_tag_on_attribute: the input script of its function step.
inputs.misp_attribute_value = artifact.value
inputs.misp_event_id = incident.properties.misp_event_id
inputs.misp_tag_name = "tlp:white"
inputs.misp_tag_type = "Attribute"
