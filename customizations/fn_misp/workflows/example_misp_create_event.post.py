#: Workflow example_misp_create_event: the post-processing script of its function step.
incident.properties.misp_event_id = results.content['Event']['id']
