#: Playbook misp_create_tag_on_event: the input script of its function step.
inputs.misp_tag_type = "Event"
inputs.misp_tag_name = "tlp:white"
inputs.misp_event_id = incident.properties.misp_event_id
