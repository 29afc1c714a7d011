#: Playbook misp_verdict: its local script "post process".
#: The verdict's one-line summary (verdict, score and the evidence that decided it) goes
#: below whatever the artifact's description already says.
results = playbook.functions.results.misp_verdict
existing_description = artifact.description.content+'\n' if artifact.description else ""
if results.get("success"):
  artifact.description = "{}{}".format(existing_description, results.get("content", {}).get("summary"))
else:
  artifact.description = "{}MISP verdict not available: {}".format(existing_description, results.get("reason"))
