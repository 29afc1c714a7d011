#: Workflow example_urlscanio: the post-processing script of its function step.
#: The function already attached the screenshot; this writes the verdict into a note.
if not results.success:
  incident.addNote(u"urlscan.io could not scan {}: {}".format(artifact.value, results.reason))
else:
  content = results.content
  summary = content.get("summary") or {}
  malicious = summary.get("malicious")
  if malicious is None:
    verdict = "no verdict"
  elif malicious:
    verdict = "malicious"
  else:
    verdict = "not malicious"
  lines = [
    u"urlscan.io scan of {}".format(artifact.value),
    u"Verdict: {} (score {})".format(verdict, summary.get("score")),
    u"Categories: {}".format(", ".join(summary.get("categories") or []) or "none"),
    u"Brands: {}".format(", ".join(summary.get("brands") or []) or "none"),
    u"Final page: {} (IP {}, country {}, server {})".format(summary.get("final_url"), summary.get("ip"), summary.get("country"), summary.get("server")),
    u"Requests: {}, domains contacted: {}".format(summary.get("requests"), summary.get("domains")),
    u"Result page: {}".format(summary.get("result_page")),
    u"Report: {}".format(content.get("report_url")),
    u"Screenshot: {}".format(content.get("png_url")),
  ]
  incident.addNote(u"\n".join(lines))
