#!/usr/bin/env python3
# Loads an export.res with resilient-sdk's own helpers, in the order `resilient-sdk codegen
# --exportfile` uses them, and checks that every object the Rust side expects is found.
#
# Usage: sdk_load_export.py EXPORT_RES EXPECTED_JSON
# EXPECTED_JSON names what must be there: {"functions": {name: [input names]},
# "incident_fields": [...], "message_destinations": [...], "workflows": {name: function},
# "rules": [...], "playbooks": {name: function}}. Prints a JSON summary; exits 1 on a miss.
import json
import sys

from resilient_sdk.util import sdk_helpers
from resilient_sdk.util.resilient_objects import ResilientObjMap


def fail(message):
    print("resilient-sdk check failed: " + message, file=sys.stderr)
    sys.exit(1)


def main():
    export_path, expected_path = sys.argv[1], sys.argv[2]
    with open(expected_path) as expected_file:
        expected = json.load(expected_file)

    export = sdk_helpers.read_local_exportfile(export_path)
    found = sdk_helpers.get_from_export(
        export,
        message_destinations=list(expected["message_destinations"]),
        functions=list(expected["functions"]),
        workflows=list(expected["workflows"]),
        rules=list(expected["rules"]),
        fields=list(expected["incident_fields"]),
        playbooks=list(expected["playbooks"]),
    )

    functions = {f["x_api_name"]: f for f in found["functions"]}
    for name, inputs in expected["functions"].items():
        if name not in functions:
            fail("function %s not found" % name)
        # The SDK collects inputs through a set, so only the names can be compared.
        got = sorted(field["name"] for field in functions[name]["inputs"])
        if got != sorted(inputs):
            fail("function %s has inputs %s, expected %s" % (name, got, inputs))
        for field in functions[name]["inputs"]:
            if "__function/" + field["name"] not in found["all_fields"]:
                fail("input %s of %s is not among all_fields" % (field["name"], name))

    for name in expected["incident_fields"]:
        if "incident/" + name not in found["all_fields"]:
            fail("incident field %s not found" % name)

    destinations = sdk_helpers.get_object_api_names(
        ResilientObjMap.MESSAGE_DESTINATIONS, found["message_destinations"])
    for name in expected["message_destinations"]:
        if name not in destinations:
            fail("message destination %s not found (found %s)" % (name, destinations))

    workflows = {w["x_api_name"]: w for w in found["workflows"]}
    for name, function in expected["workflows"].items():
        called = [step.get("name") for step in workflows[name]["wf_functions"]]
        if called != [function]:
            fail("workflow %s calls %s, expected [%s]" % (name, called, function))

    rules = sdk_helpers.get_object_api_names(ResilientObjMap.RULES, found["rules"])
    if sorted(rules) != sorted(expected["rules"]):
        fail("rules %s, expected %s" % (rules, expected["rules"]))

    playbooks = {p["x_api_name"]: p for p in found["playbooks"]}
    for name, function in expected["playbooks"].items():
        playbook = playbooks[name]
        called = [step.get("name") for step in playbook["pb_functions"]]
        if called != [function]:
            fail("playbook %s calls %s, expected [%s]" % (name, called, function))
        for script in playbook["pb_scripts"]:
            if not script.get("script_text"):
                fail("playbook %s: script %s has no text" % (name, script.get("uuid")))

    # codegen then keeps only the named objects; the result is what customize.py imports.
    minified = sdk_helpers.minify_export(
        export,
        message_destinations=destinations,
        functions=sdk_helpers.get_object_api_names(ResilientObjMap.FUNCTIONS, found["functions"]),
        workflows=sdk_helpers.get_object_api_names(ResilientObjMap.WORKFLOWS, found["workflows"]),
        rules=rules,
        fields=found["all_fields"],
        playbooks=sdk_helpers.get_object_api_names(ResilientObjMap.PLAYBOOKS, found["playbooks"]),
    )
    if len(minified["functions"]) != len(found["functions"]):
        fail("the minified export has %d functions, %d were found"
             % (len(minified["functions"]), len(found["functions"])))
    if len(minified["playbooks"]) != len(found["playbooks"]):
        fail("the minified export has %d playbooks, %d were found"
             % (len(minified["playbooks"]), len(found["playbooks"])))

    print(json.dumps({
        "functions": sorted(functions),
        "fields": sorted(set(found["all_fields"])),
        "message_destinations": sorted(destinations),
        "workflows": sorted(workflows),
        "rules": sorted(rules),
        "playbooks": sorted(playbooks),
        "minified_fields": len(minified["fields"]),
    }, indent=2))


if __name__ == "__main__":
    main()
