#: Playbook misp_search_attribute: its local script "post process".
results = playbook.functions.results.misp_attributes
existing_description = artifact.description.content+'\n' if artifact.description else ""

if not results.success:
  artifact.description = "{}No matching attribute found".format(existing_description)
else:
  matched = []
  for match in results.get("content", {}):
    matched.append(u"Event: {}, ID: {}, Tags: {}".format(match.get('Event', {}).get('info'), match.get('Event', {}).get('id'), results.get("tags")))

  artifact.description = u"{} Attribute Search Matches:\n {}".format(existing_description, '\n'.join(matched))
