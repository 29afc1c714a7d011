#: Playbook misp_publish_event: its local script "post process".
results = playbook.functions.results.misp_publish
content = results.get("content") or {}
if not results.get("success"):
  incident.addNote("MISP event {} was not published: {}".format(incident.properties.misp_event_id, results.get("reason")))
elif results.get("already_published"):
  incident.addNote("MISP event {} was already published when the incident was closed; it was not published again.".format(results.get("event_id")))
else:
  incident.addNote("MISP event {} published when the incident was closed. MISP: {}".format(results.get("event_id"), content.get("message") or "the event shows as published"))
