#: Playbook misp_create_event: its local script "post process".
results = playbook.functions.results.misp_event
if results.get("success"):
  incident.properties.misp_event_id = results.get("content", {}).get("Event", {}).get("id")
