"""CreateAuthChallenge of the quiz: the question for the client, the answer kept private."""


def handler(event, context):
    if event["request"]["challengeName"] == "CUSTOM_CHALLENGE":
        event["response"]["publicChallengeParameters"] = {"question": "What is 6 x 7?"}
        event["response"]["privateChallengeParameters"] = {"answer": "42"}
        event["response"]["challengeMetadata"] = "QUIZ"
    return event
