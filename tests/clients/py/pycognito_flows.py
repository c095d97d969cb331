"""pycognito against a Cognito-compatible endpoint.

Parameters (JSON):
    endpoint        "http://127.0.0.1:PORT" (no trailing slash: pycognito's
                    Cognito class takes {endpoint}/{userPoolId} as the issuer
                    and reads the JWKS below it)
    userPoolId, clientId, clientSecret (optional), username, password
    mode            one of
      "awssrp"        AWSSRP(...).authenticate_user(): USER_SRP_AUTH +
                      PASSWORD_VERIFIER (pycognito sends no Session with it);
                      with newPassword, set_new_password_challenge(newPassword)
                      instead (PASSWORD_VERIFIER then NEW_PASSWORD_REQUIRED)
      "cognito"       the Cognito class: authenticate (SRP, then it verifies
                      both tokens against the JWKS with PyJWT), get_user
                      (GetUser), renew_access_token (REFRESH_TOKEN_AUTH, then
                      verification again), logout (GlobalSignOut), and
                      get_user once more, which must fail
      "totp"          (MFA) the Cognito class: authenticate, associate and
                      verify a software token (TOTP computed here, RFC 6238),
                      prefer SOFTWARE_TOKEN MFA, then authenticate again: it
                      must raise SoftwareTokenMFAChallengeException, answered
                      with respond_to_software_token_mfa_challenge
      "srp_many"      AWSSRP.authenticate_user for each of `users`
                      ([{username, password}]), `rounds` times: reports
                      attempts and failures (a server that pads A, B, S, the
                      salt or x differently from Cognito fails only for some)
      "srp_bad_a"     (security) USER_SRP_AUTH with an SRP_A that is 0 modulo N
                      (0, N, 2N): the server's shared secret S is then 0 for
                      any password. Where InitiateAuth still answers, respond
                      with the signature keyed by S = 0 (in several encodings)
                      and report whether that signed in (it must not); one of
                      `usernames` (9) per attempt
      "srp_challenge" InitiateAuth USER_SRP_AUTH and compute the
                      PASSWORD_VERIFIER answer with AWSSRP, without sending
                      it: the caller sends RespondToAuthChallenge (to replay
                      it, or to send it to another node)
    newPassword     for "awssrp"
"""

import base64
import datetime
import hashlib
import hmac
import time

from pycognito import Cognito
from pycognito.aws_srp import (
    AWSSRP,
    N_HEX,
    calculate_u,
    compute_hkdf,
    hex_to_long,
    long_to_hex,
    pad_hex,
)
from pycognito.exceptions import SoftwareTokenMFAChallengeException

from clientlib import CALLS, _record_call, describe_error, idp_client, run, step, totp


def awssrp(params):
    client = idp_client(params["endpoint"])
    srp = AWSSRP(
        username=params["username"],
        password=params["password"],
        pool_id=params["userPoolId"],
        client_id=params["clientId"],
        client=client,
        client_secret=params.get("clientSecret"),
    )
    if params.get("newPassword"):
        step("set_new_password_challenge")
        response = srp.set_new_password_challenge(params["newPassword"])
    else:
        step("authenticate_user")
        response = srp.authenticate_user()
    return {"response": response}


def srp_many(params):
    client = idp_client(params["endpoint"])
    failures = []
    attempts = 0
    step(f"{len(params['users'])} users x {params.get('rounds', 1)} rounds")
    for round_ in range(params.get("rounds", 1)):
        for user in params["users"]:
            attempts += 1
            srp = AWSSRP(
                username=user["username"],
                password=user["password"],
                pool_id=params["userPoolId"],
                client_id=params["clientId"],
                client=client,
                client_secret=params.get("clientSecret"),
            )
            try:
                srp.authenticate_user()
            except Exception as err:  # noqa: BLE001 - reported
                info = describe_error(err)
                failures.append(
                    {"username": user["username"], "round": round_, "code": info["code"], "message": info["message"]}
                )
    # The call log of so many sign-ins says nothing more.
    CALLS.clear()
    return {"attempts": attempts, "failures": failures}


def srp_bad_a(params):
    client = idp_client(params["endpoint"])
    big_n = hex_to_long(N_HEX)
    pool_suffix = params["userPoolId"].split("_")[1]
    zero_encodings = {"00": b"\x00", "empty": b"", "384 zeros": b"\x00" * 384}
    outcomes = []
    # A user per attempt, so that no lockout hides a later attempt's outcome.
    usernames = iter(params["usernames"])
    for label, a_value in [("0", 0), ("N", big_n), ("2N", 2 * big_n)]:
        for encoding, s_bytes in zero_encodings.items():
            username = next(usernames)
            outcome = {"A": label, "S encoding": encoding, "username": username}
            outcomes.append(outcome)
            step(f"InitiateAuth SRP_A={label}")
            try:
                response = client.initiate_auth(
                    AuthFlow="USER_SRP_AUTH",
                    AuthParameters={"USERNAME": username, "SRP_A": long_to_hex(a_value)},
                    ClientId=params["clientId"],
                )
            except Exception as err:  # noqa: BLE001 - the expected outcome
                outcome["rejectedAt"] = "InitiateAuth"
                outcome["code"] = describe_error(err)["code"]
                break  # the other encodings would be rejected the same way
            challenge = response["ChallengeParameters"]
            user_id = challenge["USER_ID_FOR_SRP"]
            u_value = calculate_u(a_value, hex_to_long(challenge["SRP_B"]))
            key = compute_hkdf(s_bytes, bytearray.fromhex(pad_hex(long_to_hex(u_value))))
            timestamp = AWSSRP.get_cognito_formatted_timestamp(datetime.datetime.now(datetime.timezone.utc))
            secret_block = base64.standard_b64decode(challenge["SECRET_BLOCK"])
            message = pool_suffix.encode() + user_id.encode() + secret_block + timestamp.encode()
            signature = base64.standard_b64encode(hmac.new(key, message, hashlib.sha256).digest()).decode()
            step(f"RespondToAuthChallenge S=0 ({encoding})")
            try:
                session = {"Session": response["Session"]} if response.get("Session") else {}
                tokens = client.respond_to_auth_challenge(
                    ClientId=params["clientId"],
                    ChallengeName="PASSWORD_VERIFIER",
                    ChallengeResponses={
                        "USERNAME": challenge.get("USERNAME", user_id),
                        "TIMESTAMP": timestamp,
                        "PASSWORD_CLAIM_SECRET_BLOCK": challenge["SECRET_BLOCK"],
                        "PASSWORD_CLAIM_SIGNATURE": signature,
                    },
                    **session,
                )
                outcome["authenticated"] = "AuthenticationResult" in tokens
            except Exception as err:  # noqa: BLE001 - the expected outcome
                outcome["rejectedAt"] = "RespondToAuthChallenge"
                outcome["code"] = describe_error(err)["code"]
    return {"outcomes": outcomes}


def srp_challenge(params):
    client = idp_client(params["endpoint"])
    srp = AWSSRP(
        username=params["username"],
        password=params["password"],
        pool_id=params["userPoolId"],
        client_id=params["clientId"],
        client=client,
        client_secret=params.get("clientSecret"),
    )
    auth_params = srp.get_auth_params()
    step("InitiateAuth USER_SRP_AUTH")
    response = client.initiate_auth(
        AuthFlow="USER_SRP_AUTH", AuthParameters=auth_params, ClientId=params["clientId"]
    )
    if response.get("ChallengeName") != "PASSWORD_VERIFIER":
        raise RuntimeError(f"expected PASSWORD_VERIFIER, got {response!r}")
    step("process_challenge")
    answer = srp.process_challenge(response["ChallengeParameters"], auth_params)
    return {
        "challengeParameters": response["ChallengeParameters"],
        "session": response.get("Session"),
        "challengeResponses": answer,
    }


def new_cognito(params):
    user = Cognito(
        params["userPoolId"],
        params["clientId"],
        username=params["username"],
        client_secret=params.get("clientSecret"),
        boto3_client_kwargs={
            "endpoint_url": params["endpoint"],
            "aws_access_key_id": "test",
            "aws_secret_access_key": "test",
        },
    )
    user.client.meta.events.register("after-call.cognito-idp", _record_call)
    return user


def totp_mfa(params):
    user = new_cognito(params)
    step("authenticate")
    user.authenticate(password=params["password"])
    step("associate_software_token")
    secret = user.associate_software_token()
    step("verify_software_token")
    now = time.time()
    if not user.verify_software_token(totp(secret, now), device_name="cognate-test"):
        raise RuntimeError("VerifySoftwareToken did not answer SUCCESS")
    step("set_user_mfa_preference SOFTWARE_TOKEN")
    user.set_user_mfa_preference(False, True, "SOFTWARE_TOKEN")

    again = new_cognito(params)
    step("authenticate (expects SOFTWARE_TOKEN_MFA)")
    try:
        again.authenticate(password=params["password"])
        raise RuntimeError("authenticate succeeded without the SOFTWARE_TOKEN_MFA challenge")
    except SoftwareTokenMFAChallengeException:
        pass
    step("respond_to_software_token_mfa_challenge")
    # The next time step: a code is not accepted twice.
    again.respond_to_software_token_mfa_challenge(totp(secret, now + 30))
    return {"secretLength": len(secret), "tokens": {"idToken": again.id_token, "accessToken": again.access_token}}


def cognito(params):
    user = new_cognito(params)
    result = {"userPoolUrl": user.user_pool_url}

    step("authenticate (SRP + token verification)")
    user.authenticate(password=params["password"])
    result["tokens"] = {
        "idToken": user.id_token,
        "accessToken": user.access_token,
        "refreshToken": user.refresh_token,
        "tokenType": user.token_type,
    }
    result["idClaims"] = user.id_claims
    result["accessClaims"] = user.access_claims

    step("get_user")
    profile = user.get_user()
    result["user"] = {"username": profile.username, "attributes": profile._data}

    step("renew_access_token (REFRESH_TOKEN_AUTH + verification)")
    user.renew_access_token()
    result["renewed"] = {"idToken": user.id_token, "accessToken": user.access_token}
    renewed_access = user.access_token

    step("logout (GlobalSignOut)")
    user.logout()

    step("get_user after logout")
    user.access_token = renewed_access
    try:
        user.get_user()
        result["afterLogout"] = {"rejected": False}
    except Exception as err:  # noqa: BLE001 - reported
        result["afterLogout"] = {"rejected": True, **describe_error(err)}
        result["afterLogout"].pop("traceback", None)
    return result


MODES = {
    "awssrp": awssrp,
    "cognito": cognito,
    "srp_bad_a": srp_bad_a,
    "srp_challenge": srp_challenge,
    "srp_many": srp_many,
    "totp": totp_mfa,
}


def main(params):
    return MODES[params["mode"]](params)


if __name__ == "__main__":
    run(main)
