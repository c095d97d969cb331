"""PreTokenGeneration V1_0: a claim added to the ID token, one suppressed, groups replaced."""


def handler(event, context):
    event["response"]["claimsOverrideDetails"] = {
        "claimsToAddOrOverride": {"tier": "gold"},
        "claimsToSuppress": ["email"],
        "groupOverrideDetails": {"groupsToOverride": ["vip"]},
    }
    return event
