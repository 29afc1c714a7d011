#: Playbook misp_remove_tag: its local script "post process".
results = playbook.functions.results.misp_tag_removal
tag = results.get("inputs", {}).get("misp_tag_name")
if results.get("removed"):
  incident.addNote("The incident was closed as not an issue: MISP tag {} removed from the attribute {} (MISP {} {}).".format(tag, artifact.value, results.get("target", {}).get("type"), results.get("target", {}).get("uuid")))
else:
  incident.addNote("MISP tag {} was not on the attribute {}: {}".format(tag, artifact.value, results.get("message")))
