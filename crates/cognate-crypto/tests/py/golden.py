"""Drives pycognito's real SRP code (pycognito.aws_srp) for cognate-crypto's
golden tests (tests/golden_clients.rs).

Reads one JSON request on stdin and prints one JSON answer on stdout. It never
touches the network: AWSSRP gets a stub in place of the boto3 client, which
plays the server from values the Rust test computed.
"""

import base64
import json
import sys
import warnings

# pycognito calls datetime.utcnow(), deprecated in newer Pythons.
warnings.simplefilter("ignore", DeprecationWarning)

from pycognito import aws_srp  # noqa: E402
from pycognito.aws_srp import AWSSRP  # noqa: E402


class StubClient:
    """Stands in for boto3's cognito-idp client; records every request."""

    def __init__(self, flow):
        self.flow = flow
        self.requests = []

    def initiate_auth(self, **params):
        self.requests.append({"operation": "InitiateAuth", "params": params})
        f = self.flow
        return {
            "ChallengeName": "PASSWORD_VERIFIER",
            "ChallengeParameters": {
                "SALT": f["salt_hex"],
                "SRP_B": f["b_hex"],
                "SECRET_BLOCK": f["secret_block"],
                "USER_ID_FOR_SRP": f["user_id_for_srp"],
                "USERNAME": f["user_id_for_srp"],
            },
        }

    def respond_to_auth_challenge(self, **params):
        self.requests.append({"operation": "RespondToAuthChallenge", "params": params})
        f = self.flow
        challenge = params["ChallengeName"]
        if challenge == "PASSWORD_VERIFIER" and f.get("device"):
            return {"ChallengeName": "DEVICE_SRP_AUTH", "Session": "golden-session-1"}
        if challenge == "DEVICE_SRP_AUTH":
            d = f["device"]
            return {
                "ChallengeName": "DEVICE_PASSWORD_VERIFIER",
                "ChallengeParameters": {
                    "SRP_B": d["b_hex"],
                    "SALT": d["salt_hex"],
                    "SECRET_BLOCK": d["secret_block"],
                    "USERNAME": f["user_id_for_srp"],
                    "DEVICE_KEY": d["device_key"],
                },
                "Session": "golden-session-2",
            }
        return {"AuthenticationResult": {}}


def helper_case(c):
    """One exchange with a fixed `a`, through AWSSRP's own functions."""
    srp = AWSSRP(
        username=c["username"],
        password=c["password"],
        pool_id=c["pool_id"],
        client_id="unused",
        client=StubClient({}),
    )
    srp.small_a_value = int(c["a_hex"], 16)
    srp.large_a_value = srp.calculate_a()
    b = aws_srp.hex_to_long(c["b_hex"])
    # process_challenge passes SALT on as the string it received.
    if c.get("device"):
        d = c["device"]
        key = srp.get_device_authentication_key(
            d["device_group_key"], d["device_key"], c["password"], b, c["salt_hex"]
        )
    else:
        key = srp.get_password_authentication_key(
            c["username"], c["password"], b, c["salt_hex"]
        )
    return {
        "a_pub_hex": aws_srp.long_to_hex(srp.large_a_value),
        "key_hex": key.hex(),
        "u_hex": aws_srp.long_to_hex(aws_srp.calculate_u(srp.large_a_value, b)),
    }


def device_hashes(c):
    out = []
    padded = unpadded = False
    for _ in range(64):
        if len(out) >= c["min"] and padded and unpadded:
            break
        password, config = aws_srp.generate_hash_device(
            c["device_group_key"], c["device_key"]
        )
        salt = base64.standard_b64decode(config["Salt"]).hex()
        if salt.startswith("00"):
            padded = True
        else:
            unpadded = True
        out.append(
            {
                "password": password,
                "salt_hex": salt,
                "verifier_hex": base64.standard_b64decode(
                    config["PasswordVerifier"]
                ).hex(),
            }
        )
    return out


def flow(f):
    stub = StubClient(f)
    device = f.get("device") or {}
    srp = AWSSRP(
        username=f["username"],
        password=f["password"],
        pool_id=f["pool_id"],
        client_id=f["client_id"],
        client=stub,
        client_secret=f.get("client_secret"),
        device_key=device.get("device_key"),
        device_group_key=device.get("device_group_key"),
        device_password=device.get("password"),
    )
    srp.authenticate_user()
    return {"requests": stub.requests, "error": None}


def main():
    request = json.load(sys.stdin)
    out = {
        "helper": [helper_case(c) for c in request["helper"]],
        "device_hashes": device_hashes(request["device_hashes"]),
        "flows": [flow(f) for f in request["flows"]],
        "secret_hashes": [
            AWSSRP.get_secret_hash(c["username"], c["client_id"], c["client_secret"])
            for c in request["secret_hashes"]
        ],
    }
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
