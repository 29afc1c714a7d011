#: Playbook misp_delete_attribute: its local script "post process".
results = playbook.functions.results.misp_attribute_deletion
if results.get("already_deleted"):
  incident.addNote("The artifact {} was already deleted from MISP event {} (attribute {}).".format(artifact.value, incident.properties.misp_event_id, results.get("attribute_id")))
else:
  incident.addNote("The artifact {} was deleted from MISP event {} (attribute {}, {} delete).".format(artifact.value, incident.properties.misp_event_id, results.get("attribute_id"), "hard" if results.get("hard") else "soft"))
