"""boto3 admin authentication flows against a Cognito-compatible endpoint.

Parameters (JSON):
    endpoint, userPoolId, clientId, clientSecret (optional), username
    password        the user's (temporary) password
    newPassword     answer to NEW_PASSWORD_REQUIRED (the user was created with
                    AdminCreateUser and a TemporaryPassword)

Steps: AdminInitiateAuth ADMIN_USER_PASSWORD_AUTH (must answer
NEW_PASSWORD_REQUIRED when newPassword is given), AdminRespondToAuthChallenge
NEW_PASSWORD_REQUIRED, AdminInitiateAuth ADMIN_USER_PASSWORD_AUTH with the new
password, AdminInitiateAuth REFRESH_TOKEN_AUTH, GetUser with the access token.
"""

import base64
import hashlib
import hmac

from clientlib import idp_client, run, step


def secret_hash(username, client_id, client_secret):
    digest = hmac.new(client_secret.encode(), (username + client_id).encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def main(params):
    client = idp_client(params["endpoint"])
    pool, client_id, username = params["userPoolId"], params["clientId"], params["username"]
    secret = params.get("clientSecret")

    def with_hash(auth, name=username):
        if secret:
            auth["SECRET_HASH"] = secret_hash(name, client_id, secret)
        return auth

    result = {}
    password = params["password"]
    if params.get("newPassword"):
        step("AdminInitiateAuth ADMIN_USER_PASSWORD_AUTH (temporary password)")
        challenge = client.admin_initiate_auth(
            UserPoolId=pool,
            ClientId=client_id,
            AuthFlow="ADMIN_USER_PASSWORD_AUTH",
            AuthParameters=with_hash({"USERNAME": username, "PASSWORD": password}),
        )
        challenge.pop("ResponseMetadata", None)
        result["challenge"] = challenge
        if challenge.get("ChallengeName") != "NEW_PASSWORD_REQUIRED":
            raise RuntimeError(f"expected NEW_PASSWORD_REQUIRED, got {challenge!r}")
        step("AdminRespondToAuthChallenge NEW_PASSWORD_REQUIRED")
        answered = client.admin_respond_to_auth_challenge(
            UserPoolId=pool,
            ClientId=client_id,
            ChallengeName="NEW_PASSWORD_REQUIRED",
            Session=challenge["Session"],
            ChallengeResponses=with_hash({"USERNAME": username, "NEW_PASSWORD": params["newPassword"]}),
        )
        answered.pop("ResponseMetadata", None)
        result["answered"] = answered
        password = params["newPassword"]

    step("AdminInitiateAuth ADMIN_USER_PASSWORD_AUTH")
    signed_in = client.admin_initiate_auth(
        UserPoolId=pool,
        ClientId=client_id,
        AuthFlow="ADMIN_USER_PASSWORD_AUTH",
        AuthParameters=with_hash({"USERNAME": username, "PASSWORD": password}),
    )
    signed_in.pop("ResponseMetadata", None)
    result["signedIn"] = signed_in
    tokens = signed_in["AuthenticationResult"]

    step("AdminInitiateAuth REFRESH_TOKEN_AUTH")
    refreshed = client.admin_initiate_auth(
        UserPoolId=pool,
        ClientId=client_id,
        AuthFlow="REFRESH_TOKEN_AUTH",
        AuthParameters=with_hash({"REFRESH_TOKEN": tokens["RefreshToken"]}),
    )
    refreshed.pop("ResponseMetadata", None)
    result["refreshed"] = refreshed

    step("GetUser")
    user = client.get_user(AccessToken=refreshed["AuthenticationResult"]["AccessToken"])
    user.pop("ResponseMetadata", None)
    result["user"] = user
    return result


if __name__ == "__main__":
    run(main)
