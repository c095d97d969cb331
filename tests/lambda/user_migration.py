"""UserMigration: users of an old directory move into the pool the first time they sign in
(with their old password) or ask to reset their password."""

OLD_DIRECTORY = {
    "legacy-lee": {"password": "Legacy-Passw0rd!", "email": "lee@example.com"},
    "legacy-kim": {"password": "Kims-Old-Passw0rd!", "email": "kim@example.com"},
}


def handler(event, context):
    user = OLD_DIRECTORY.get(event["userName"])
    if user is None:
        raise Exception("User not found")
    if event["triggerSource"] == "UserMigration_Authentication":
        if event["request"]["password"] != user["password"]:
            raise Exception("Bad password")
        event["response"]["finalUserStatus"] = "CONFIRMED"
    else:
        event["response"]["finalUserStatus"] = "RESET_REQUIRED"
    event["response"]["userAttributes"] = {"email": user["email"], "email_verified": "true"}
    event["response"]["messageAction"] = "SUPPRESS"
    return event
