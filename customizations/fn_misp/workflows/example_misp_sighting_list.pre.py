#: Workflow example_misp_sighting_list: the pre-processing script of its function step.
inputs.misp_event_id = incident.properties.misp_event_id
