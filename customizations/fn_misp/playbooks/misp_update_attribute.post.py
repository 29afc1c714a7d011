#: Playbook misp_update_attribute: its local script "post process".
results = playbook.functions.results.misp_attribute_update
attribute = results.get("content", {}).get("Attribute", {})
if not results.get("success"):
  incident.addNote("MISP did not update the attribute {}: {}".format(artifact.value, results.get("reason")))
elif results.get("changed"):
  incident.addNote("MISP attribute {} ({}) marked benign: to_ids is now {}, comment '{}'.".format(results.get("attribute_id"), artifact.value, attribute.get("to_ids"), attribute.get("comment")))
else:
  incident.addNote("MISP attribute {} ({}) was already marked benign; nothing changed.".format(results.get("attribute_id"), artifact.value))
