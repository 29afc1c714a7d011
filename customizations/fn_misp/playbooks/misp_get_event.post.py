#: Playbook misp_get_event: its local script "post process".
results = playbook.functions.results.misp_event
event = (results.get("content") or {}).get("Event") or {}
lines = [u"MISP event {}: {}".format(event.get("id"), event.get("info"))]
techniques = results.get("attack_techniques") or []
if techniques:
  lines.append(u"ATT&CK techniques:")
  for technique in techniques:
    lines.append(u"  {} {}".format(technique.get("id"), technique.get("name")))
else:
  lines.append(u"ATT&CK techniques: none")
related = results.get("related_events") or []
if related:
  lines.append(u"Related events:")
  for other in related:
    lines.append(u"  {} {} ({}, threat level {}, {})".format(other.get("id"), other.get("info"), other.get("date"), other.get("threat_level_id"), other.get("orgc") or other.get("org")))
else:
  lines.append(u"Related events: none")
if results.get("truncated"):
  lines.append(u"(the event has {} attributes; the result holds the first of them)".format(results.get("total_attributes")))
incident.addNote(u"\n".join(lines))
