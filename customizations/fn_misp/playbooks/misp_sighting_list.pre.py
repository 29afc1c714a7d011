#: Playbook misp_sighting_list: the input script of its function step.
inputs.misp_event_id = incident.properties.misp_event_id
