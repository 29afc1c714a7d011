#: Playbook misp_add_attributes: its local script "post process".
#: One note per run: the summary line, then each value with its outcome.
results = playbook.functions.results.misp_attributes_added
if not results.get("success"):
  incident.addNote("MISP did not add the values of artifact {}: {}".format(artifact.value, results.get("reason")))
else:
  lines = [results.get("summary")]
  for item in results.get("results") or []:
    outcome = item.get("outcome")
    if outcome == "created":
      detail = "created as {} (attribute {})".format(item.get("type"), item.get("id"))
    elif outcome == "already present":
      detail = "already in the event (attribute {})".format(item.get("id"))
    elif outcome == "on warninglist":
      names = ", ".join([hit.get("name") for hit in item.get("warninglists") or []])
      detail = "not added, on MISP warninglist {}".format(names)
    else:
      detail = "not added: {}".format(item.get("reason"))
    lines.append("{}: {}".format(item.get("value") or "(entry)", detail))
  incident.addNote("\n".join(lines))
