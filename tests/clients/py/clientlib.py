"""Shared plumbing of the Python client scripts.

Every script takes its parameters as a JSON object, either as the first
argument or (when there is none) on standard input, and prints exactly one
JSON object on standard output:
    {"ok": true, "steps": [...], "calls": [...], ...results}     exit code 0
    {"ok": false, "steps": [...], "calls": [...], "error": {...}} exit code 1
`steps` names what the script did and `calls` lists every cognito-idp and
cognito-identity call (operation, HTTP status, error code; for
cognito-identity also whether it was signed and carried a session token), so
a failure says where it happened.
"""

import base64
import json
import sys
import traceback

import boto3
import botocore.config

STEPS = []
CALLS = []


def step(name):
    STEPS.append(name)


def read_params():
    raw = sys.argv[1] if len(sys.argv) > 1 else sys.stdin.read()
    return json.loads(raw)


# Whether the request being sent carries a SigV4 signature (and a session
# token), set by before-send and added to the call after-call records.
_SENT = {}


def _record_sent(request, **_kwargs):
    _SENT["signed"] = "Authorization" in request.headers
    _SENT["sessionToken"] = "X-Amz-Security-Token" in request.headers


def _record_call(http_response, parsed, model, **_kwargs):
    call = {"operation": model.name, "status": http_response.status_code, **_SENT}
    _SENT.clear()
    error = parsed.get("Error") if isinstance(parsed, dict) else None
    if error:
        call["error"] = {"code": error.get("Code"), "message": error.get("Message")}
    CALLS.append(call)


def idp_client(endpoint):
    """A cognito-idp client for the server, with the default test credentials."""
    client = boto3.client(
        "cognito-idp",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=botocore.config.Config(retries={"max_attempts": 1, "mode": "standard"}),
    )
    client.meta.events.register("after-call.cognito-idp", _record_call)
    return client


def identity_client(endpoint, access_key="test", secret_key="test", session_token=None):
    """A cognito-identity client for the server: with the default test
    credentials, or with temporary ones (and their session token)."""
    client = boto3.client(
        "cognito-identity",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        aws_session_token=session_token,
        config=botocore.config.Config(retries={"max_attempts": 1, "mode": "standard"}),
    )
    client.meta.events.register("before-send.cognito-identity", _record_sent)
    client.meta.events.register("after-call.cognito-identity", _record_call)
    return client


def totp(secret, at):
    """RFC 6238 TOTP (SHA-1, 6 digits, 30 s) of a base32 secret at time `at`."""
    import base64
    import hashlib
    import hmac
    import struct

    key = base64.b32decode(secret.upper() + "=" * (-len(secret) % 8))
    digest = hmac.new(key, struct.pack(">Q", int(at) // 30), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    value = struct.unpack(">I", digest[offset : offset + 4])[0] & 0x7FFFFFFF
    return f"{value % 1000000:06d}"


def aws_client(service, endpoint, access_key="test", secret_key="test", session_token=None):
    """Any AWS service's boto3 client at `endpoint` (Cognito Sync at Cognate, Kinesis or SNS
    at moto), in us-east-1, without retries."""
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        aws_session_token=session_token,
        config=botocore.config.Config(retries={"max_attempts": 1, "mode": "standard"}),
    )


def refusal(call):
    """How `call` is refused (it must fail): the exception botocore raised (named after the
    error code when the service model has that error), the code, the message, the HTTP status."""
    from botocore.exceptions import ClientError

    try:
        out = call()
    except ClientError as err:
        info = describe_error(err)
        status = err.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return {"exception": info["name"], "code": info["code"], "message": info["message"], "status": status}
    raise RuntimeError(f"succeeded: {out!r}")


def refused(call):
    """The error code and HTTP status `call` fails with (it must fail)."""
    answer = refusal(call)
    return {"code": answer["code"], "status": answer["status"]}


def claims(token):
    """The claims of a JWT (not verified)."""
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def describe_error(err):
    info = {"name": type(err).__name__, "message": str(err)}
    response = getattr(err, "response", None)
    if isinstance(response, dict) and "Error" in response:
        info["code"] = response["Error"].get("Code")
        info["message"] = response["Error"].get("Message")
    else:
        info["code"] = type(err).__name__
    info["traceback"] = "".join(traceback.format_exception(err)[-6:])
    return info


def error_code(err):
    return describe_error(err)["code"]


def run(main):
    try:
        params = read_params()
        result = main(params) or {}
    except Exception as err:  # noqa: BLE001 - reported as JSON
        print(json.dumps({"ok": False, "steps": STEPS, "calls": CALLS, "error": describe_error(err)}))
        sys.exit(1)
    print(json.dumps({"ok": True, "steps": STEPS, "calls": CALLS, **result}, default=str))
    sys.exit(0)
