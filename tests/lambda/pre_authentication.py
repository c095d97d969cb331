"""PreAuthentication: refuses a suspended account, and sign-ins that do not say which app
they come from (ClientMetadata reaches this trigger as validationData)."""


def handler(event, context):
    if event["userName"] == "suspended":
        raise Exception("This account is suspended")
    if event["request"].get("validationData", {}).get("app") == "banned-app":
        raise Exception("This app may not sign in")
    return event
