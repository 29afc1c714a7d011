#: Playbook misp_check_warninglist: the input script of its function step.
#: An artifact may hold one value or a list (one per line, or a JSON list); each is checked.
inputs.misp_values = artifact.value
