#: Playbook misp_get_event: the input script of its function step.
#: misp_max_attributes caps the attributes returned (1000 when left out); the techniques and
#: related events are read from the whole event either way.
inputs.misp_event_id = incident.properties.misp_event_id
inputs.misp_max_attributes = 200
