#: Workflow example_misp_create_tag_on_event: the pre-processing script of its function step.
inputs.misp_event_id = incident.properties.misp_event_id
inputs.misp_tag_name = "tlp:white"
inputs.misp_tag_type = "Event"
