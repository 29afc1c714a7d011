#: Playbook example_urlscanio: the input script of its function step.
# The artifact is the URL to scan; the incident receives the screenshot.
inputs.urlscanio_url = artifact.value
inputs.incident_id = incident.id
# A private scan: urlscan.io does not list it on its public pages.
inputs.urlscanio_public = False
