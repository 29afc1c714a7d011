#: Playbook misp_publish_event: the input script of its function step.
#: Set misp_publish_alert to True to also send MISP's e-mail alert to its users.
inputs.misp_event_id = incident.properties.misp_event_id
inputs.misp_publish_alert = False
