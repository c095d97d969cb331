"""PostConfirmation: a welcome step after confirmation (here it only checks what it is given)."""


def handler(event, context):
    if "email" not in event["request"]["userAttributes"]:
        raise ValueError("no email to welcome")
    return event
