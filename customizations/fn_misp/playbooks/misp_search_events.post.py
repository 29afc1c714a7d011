#: Playbook misp_search_events: its local script "post process".
results = playbook.functions.results.misp_events
content = results.get("content") or {}
events = content.get("events") or []
if not events:
  incident.addNote(u"No MISP event published in the last 30 days holds {}.".format(artifact.value))
else:
  lines = [u"MISP events published in the last 30 days that hold {} ({} in all, {} listed):".format(artifact.value, content.get("total"), len(events))]
  for event in events:
    lines.append(u"  {} {} ({}, threat level {}, {}, tags: {})".format(event.get("id"), event.get("info"), event.get("date"), event.get("threat_level"), event.get("orgc"), u", ".join(event.get("tags") or []) or u"none"))
  incident.addNote(u"\n".join(lines))
