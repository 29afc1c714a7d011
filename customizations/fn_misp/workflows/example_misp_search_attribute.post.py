#: Workflow example_misp_search_attribute: the post-processing script of its function step.
existing_description = artifact.description.content + '\n' if artifact.description else ""

if not results.success:
  artifact.description = "{}No matching attribute found".format(existing_description)
else:
  lines = []
  for match in results.content:
    lines.append(u"Event: {}, ID: {}, Tags: {}".format(match['Event']['info'], match['Event']['id'], results.tags))
  artifact.description = u"{} Attribute Search Matches:\n {}".format(existing_description, '\n'.join(lines))
