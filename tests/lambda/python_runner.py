"""Runs one Python Lambda handler for host.mjs: reads {event, context} as JSON on stdin, calls
`handler(event, context)` of the file named on the command line, prints {result} or {error}."""

import importlib.util
import json
import sys
import types


def main():
    path = sys.argv[1]
    spec = importlib.util.spec_from_file_location("function", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    given = json.load(sys.stdin)
    context = types.SimpleNamespace(**given["context"], get_remaining_time_in_millis=lambda: 5000)
    try:
        answer = {"result": module.handler(given["event"], context)}
    except Exception as err:  # the function's error goes back to Cognate, as Lambda reports it
        answer = {"error": {"errorType": type(err).__name__, "errorMessage": str(err)}}
    print(json.dumps(answer))


if __name__ == "__main__":
    main()
