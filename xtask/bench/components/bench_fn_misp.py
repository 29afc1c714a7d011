"""The baseline's function for `cargo xtask bench`: misp_search_attribute served by
resilient-circuits the way fn_misp does it (a legacy @function component, a PyMISP client
built for every call, search(value=...), three progress messages, the same result dict).

resilient-circuits loads this file because the benchmark's app.config names this directory
as `componentsdir`.
"""

from pymisp import PyMISP
from resilient_circuits import (
    FunctionError,
    FunctionResult,
    ResilientComponent,
    StatusMessage,
    function,
    handler,
)


def _attribute_tags(events):
    """The names of every event tag and attribute tag in the search results, once each."""
    names = set()
    for entry in events:
        event = entry.get("Event", {})
        for tag in event.get("Tag", []) or []:
            names.add(tag.get("name"))
        for attribute in event.get("Attribute", []) or []:
            for tag in attribute.get("Tag", []) or []:
                names.add(tag.get("name"))
    return sorted(name for name in names if name)


class BenchMispSearch(ResilientComponent):
    """Serves misp_search_attribute on the fn_misp message destination."""

    def __init__(self, opts):
        super(BenchMispSearch, self).__init__(opts)
        self.options = opts.get("fn_misp", {})

    @handler("reload")
    def _reload(self, event, opts):
        self.options = opts.get("fn_misp", {})

    @function("misp_search_attribute")
    def _misp_search_attribute_function(self, event, *args, **kwargs):
        try:
            yield StatusMessage("Setting up connection to MISP")
            url = self.options.get("misp_url")
            key = self.options.get("misp_key")
            verify = str(self.options.get("verify_cert", "true")).lower() != "false"
            client = PyMISP(url, key, verify, False)

            value = kwargs.get("misp_attribute_value")
            yield StatusMessage("Searching for attribute - {}".format(value))
            found = client.search(value=value)
            if not isinstance(found, list):
                raise ValueError(
                    "Received an unexpected response type from the MISP API. "
                    "Expected a list but received: {}".format(type(found).__name__)
                )
            yield StatusMessage("Attribute search complete.")

            if found:
                results = {"success": True, "content": found, "tags": _attribute_tags(found)}
            else:
                results = {"success": False}
            yield FunctionResult(results)
        except Exception:
            yield FunctionError()
