#: Playbook misp_check_warninglist: its local script "post process".
#: Values on a warninglist are usually benign or too common to act on: say so in a note.
results = playbook.functions.results.misp_warninglists
if not results.get("success"):
  incident.addNote("MISP could not check {} against its warninglists: {}".format(artifact.value, results.get("reason")))
else:
  lines = [results.get("summary")]
  for item in results.get("results") or []:
    for hit in item.get("warninglists") or []:
      lines.append("{} is on '{}' (list {}, entry {})".format(item.get("value"), hit.get("name"), hit.get("id"), hit.get("matched") or "not given"))
  incident.addNote("\n".join(lines))
