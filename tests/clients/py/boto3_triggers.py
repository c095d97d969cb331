"""Lambda triggers as boto3 sees them: pools whose LambdaConfig names the functions of
tests/lambda (run by the stand-in Lambda host Cognate was started with), then the calls
that run them, and what boto3 gets back: refusals as the modeled exceptions, confirmations,
claims and scopes, challenges, migrated users.

Parameters (JSON): endpoint.

Steps, each in a pool of its own (created here with boto3, LambdaConfig included):
- signUp (PreSignUp pre-sign-up, PostConfirmation post_confirmation): SignUp and
  AdminCreateUser refused for a blocked domain (nobody created); SignUp with an invitation in
  ValidationData confirmed by the function; SignUp, ConfirmSignUp with the outbox's code
  (PostConfirmation_ConfirmSignUp), ForgotPassword and ConfirmForgotPassword
  (PostConfirmation_ConfirmForgotPassword);
- authentication (PreAuthentication pre_authentication, PostAuthentication
  post-authentication, PreTokenGeneration V2_0 pre-token-v2): a suspended user refused; a
  sign-in with ClientMetadata; its tokens' claims and scopes; a refresh; a temporary password
  changed at NEW_PASSWORD_REQUIRED (TokenGeneration_NewPasswordChallenge);
- quiz (CUSTOM_AUTH: define-auth-challenge, create_auth_challenge, verify-auth-challenge):
  InitiateAuth CUSTOM_AUTH, a wrong answer, the right one;
- migration (UserMigration user_migration): a sign-in with the old password, the same
  again, a wrong old password refused, ForgotPassword migrating a user as RESET_REQUIRED;
- slow (PreSignUp slower than Cognito's 5 seconds): SignUp refused, nobody created;
- garbage (PreAuthentication answering something that is not an event): sign-in refused.

Result: pools {scenario: {poolId, clientId}} and the answers, keyed by scenario; refusals
as {exception, code, message, status}; tokens as their claims.
"""

import json
import time
import urllib.parse
import urllib.request

from clientlib import claims, idp_client, refusal, run, step

PASSWORD = "Passw0rd!"
FLOWS = ["ALLOW_USER_PASSWORD_AUTH", "ALLOW_CUSTOM_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"]


def arn(function):
    return f"arn:aws:lambda:us-east-1:000000000000:function:{function}"


def email(username):
    return [{"Name": "email", "Value": f"{username}@example.com"}]


def latest_code(endpoint, pool, username):
    """The code of the newest message Cognate delivered to the user (its outbox)."""
    query = urllib.parse.urlencode({"pool": pool, "user": username})
    with urllib.request.urlopen(f"{endpoint}/_cognate/outbox?{query}") as answer:
        return json.load(answer)["messages"][-1]["code"]


class Pool:
    """A pool with `lambda_config` and an app client allowing the flows the steps use."""

    def __init__(self, idp, name, lambda_config):
        self.idp = idp
        self.id = idp.create_user_pool(PoolName=name, LambdaConfig=lambda_config, AutoVerifiedAttributes=["email"])[
            "UserPool"
        ]["Id"]
        self.client = idp.create_user_pool_client(UserPoolId=self.id, ClientName=name, ExplicitAuthFlows=FLOWS)[
            "UserPoolClient"
        ]["ClientId"]

    def ids(self):
        return {"poolId": self.id, "clientId": self.client}

    def confirmed_user(self, username):
        self.idp.admin_create_user(
            UserPoolId=self.id,
            Username=username,
            UserAttributes=email(username) + [{"Name": "email_verified", "Value": "true"}],
            MessageAction="SUPPRESS",
        )
        self.idp.admin_set_user_password(UserPoolId=self.id, Username=username, Password=PASSWORD, Permanent=True)

    def sign_in(self, username, password=PASSWORD, **extra):
        return self.idp.initiate_auth(
            ClientId=self.client,
            AuthFlow="USER_PASSWORD_AUTH",
            AuthParameters={"USERNAME": username, "PASSWORD": password},
            **extra,
        )

    def status(self, username):
        user = self.idp.admin_get_user(UserPoolId=self.id, Username=username)
        return {"status": user["UserStatus"], "attributes": {a["Name"]: a["Value"] for a in user["UserAttributes"]}}

    def missing(self, username):
        return refusal(lambda: self.idp.admin_get_user(UserPoolId=self.id, Username=username))["code"]


def sign_up(idp, endpoint):
    pool = Pool(
        idp, "signup", {"PreSignUp": arn("pre-sign-up"), "PostConfirmation": arn("post_confirmation")}
    )
    out = {}
    step("signUp: refused by PreSignUp")
    blocked = [{"Name": "email", "Value": "mallory@blocked.example"}]
    out["refused"] = refusal(
        lambda: idp.sign_up(ClientId=pool.client, Username="mallory", Password=PASSWORD, UserAttributes=blocked)
    )
    out["refusedAdmin"] = refusal(
        lambda: idp.admin_create_user(UserPoolId=pool.id, Username="mallory", UserAttributes=blocked)
    )
    out["malloryAfter"] = pool.missing("mallory")

    step("signUp: confirmed by PreSignUp")
    invited = idp.sign_up(
        ClientId=pool.client,
        Username="ivy",
        Password=PASSWORD,
        UserAttributes=email("ivy"),
        ValidationData=[{"Name": "invitation", "Value": "welcome"}],
        ClientMetadata={"campaign": "winter"},
    )
    out["invited"] = {"confirmed": invited["UserConfirmed"], "codeSent": "CodeDeliveryDetails" in invited}
    out["ivy"] = pool.status("ivy")

    step("signUp: confirmed with a code, then PostConfirmation")
    walt = idp.sign_up(ClientId=pool.client, Username="walt", Password=PASSWORD, UserAttributes=email("walt"))
    out["walt"] = {"confirmed": walt["UserConfirmed"]}
    idp.confirm_sign_up(
        ClientId=pool.client,
        Username="walt",
        ConfirmationCode=latest_code(endpoint, pool.id, "walt"),
        ClientMetadata={"source": "email-link"},
    )
    out["waltConfirmed"] = pool.status("walt")["status"]
    step("signUp: a forgotten password reset, then PostConfirmation again")
    idp.forgot_password(ClientId=pool.client, Username="walt")
    idp.confirm_forgot_password(
        ClientId=pool.client,
        Username="walt",
        ConfirmationCode=latest_code(endpoint, pool.id, "walt"),
        Password="N3wPassw0rd!",
    )
    return pool, out


def authentication(idp):
    pool = Pool(
        idp,
        "authentication",
        {
            "PreAuthentication": arn("pre_authentication"),
            "PostAuthentication": arn("post-authentication"),
            "PreTokenGenerationConfig": {"LambdaVersion": "V2_0", "LambdaArn": arn("pre-token-v2")},
        },
    )
    pool.confirmed_user("alice")
    pool.confirmed_user("suspended")
    out = {}
    step("authentication: refused by PreAuthentication")
    out["suspended"] = refusal(lambda: pool.sign_in("suspended"))
    step("authentication: signed in, the tokens shaped by PreTokenGeneration")
    tokens = pool.sign_in("alice", ClientMetadata={"app": "web"})["AuthenticationResult"]
    out["id"] = claims(tokens["IdToken"])
    out["access"] = claims(tokens["AccessToken"])
    step("authentication: refreshed")
    refreshed = idp.initiate_auth(
        ClientId=pool.client, AuthFlow="REFRESH_TOKEN_AUTH", AuthParameters={"REFRESH_TOKEN": tokens["RefreshToken"]}
    )["AuthenticationResult"]
    out["refreshed"] = claims(refreshed["AccessToken"])
    step("authentication: a temporary password changed")
    idp.admin_create_user(
        UserPoolId=pool.id,
        Username="newbie",
        UserAttributes=email("newbie"),
        TemporaryPassword="Temp0rary!",
        MessageAction="SUPPRESS",
    )
    challenge = pool.sign_in("newbie", "Temp0rary!")
    answered = idp.respond_to_auth_challenge(
        ClientId=pool.client,
        ChallengeName="NEW_PASSWORD_REQUIRED",
        Session=challenge["Session"],
        ChallengeResponses={"USERNAME": "newbie", "NEW_PASSWORD": "N3wPassw0rd!"},
    )
    out["newPassword"] = {
        "challenge": challenge.get("ChallengeName"),
        "access": claims(answered["AuthenticationResult"]["AccessToken"]),
    }
    return pool, out


def quiz(idp):
    pool = Pool(
        idp,
        "quiz",
        {
            "DefineAuthChallenge": arn("define-auth-challenge"),
            "CreateAuthChallenge": arn("create_auth_challenge"),
            "VerifyAuthChallengeResponse": arn("verify-auth-challenge"),
        },
    )
    pool.confirmed_user("carol")

    def answer(session, text):
        return idp.respond_to_auth_challenge(
            ClientId=pool.client,
            ChallengeName="CUSTOM_CHALLENGE",
            Session=session,
            ChallengeResponses={"USERNAME": "carol", "ANSWER": text},
        )

    step("quiz: InitiateAuth CUSTOM_AUTH")
    first = idp.initiate_auth(
        ClientId=pool.client,
        AuthFlow="CUSTOM_AUTH",
        AuthParameters={"USERNAME": "carol"},
        ClientMetadata={"device": "kiosk"},
    )
    step("quiz: a wrong answer")
    again = answer(first["Session"], "41")
    step("quiz: the right answer")
    done = answer(again["Session"], "42")
    return pool, {
        "first": {"challenge": first.get("ChallengeName"), "parameters": first.get("ChallengeParameters")},
        "again": {"challenge": again.get("ChallengeName"), "parameters": again.get("ChallengeParameters")},
        "done": {"challenge": done.get("ChallengeName"), "access": claims(done["AuthenticationResult"]["AccessToken"])},
    }


def migration(idp):
    pool = Pool(idp, "migration", {"UserMigration": arn("user_migration")})
    out = {}
    step("migration: signed in with the old password, twice")
    out["signIns"] = [claims(pool.sign_in("legacy-lee", "Legacy-Passw0rd!")["AuthenticationResult"]["IdToken"]) for _ in range(2)]
    out["lee"] = pool.status("legacy-lee")
    step("migration: a wrong old password")
    out["refused"] = refusal(lambda: pool.sign_in("legacy-kim", "not-her-password"))
    out["kimAfter"] = pool.missing("legacy-kim")
    step("migration: ForgotPassword")
    delivery = idp.forgot_password(ClientId=pool.client, Username="legacy-kim")["CodeDeliveryDetails"]
    out["forgot"] = {"attribute": delivery.get("AttributeName"), "status": pool.status("legacy-kim")["status"]}
    return pool, out


def failures(idp):
    slow = Pool(idp, "slow", {"PreSignUp": arn("slow")})
    garbage = Pool(idp, "garbage", {"PreAuthentication": arn("garbage")})
    garbage.confirmed_user("bob")
    out = {}
    step("failures: a PreSignUp slower than 5 seconds")
    started = time.monotonic()
    out["slow"] = refusal(
        lambda: idp.sign_up(ClientId=slow.client, Username="sam", Password=PASSWORD, UserAttributes=email("sam"))
    )
    out["slowSeconds"] = time.monotonic() - started
    out["samAfter"] = slow.missing("sam")
    step("failures: a PreAuthentication answering garbage")
    out["garbage"] = refusal(lambda: garbage.sign_in("bob"))
    return {"slow": slow, "garbage": garbage}, out


def main(params):
    endpoint = params["endpoint"]
    idp = idp_client(endpoint)
    pools, result = {}, {}
    for name, scenario in [
        ("signUp", lambda: sign_up(idp, endpoint)),
        ("authentication", lambda: authentication(idp)),
        ("quiz", lambda: quiz(idp)),
        ("migration", lambda: migration(idp)),
    ]:
        pool, result[name] = scenario()
        pools[name] = pool.ids()
    failing, result["failures"] = failures(idp)
    pools.update({name: pool.ids() for name, pool in failing.items()})
    return {"pools": pools, **result}


if __name__ == "__main__":
    run(main)
