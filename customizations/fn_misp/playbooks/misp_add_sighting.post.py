#: Playbook misp_add_sighting: its local script "post process".
results = playbook.functions.results.misp_false_positive
existing_description = artifact.description.content+'\n' if artifact.description else ""
if results.get("success"):
  sighting = results.get("content", {}).get("Sighting", {})
  artifact.description = "{}MISP {} reported by {} (sighting {} on attribute {})".format(existing_description, results.get("sighting_type"), results.get("source"), sighting.get("id"), sighting.get("attribute_id"))
else:
  artifact.description = "{}MISP {} not recorded: {}".format(existing_description, results.get("sighting_type"), results.get("reason"))
