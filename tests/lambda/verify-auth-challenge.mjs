// VerifyAuthChallengeResponse of the quiz.
export const handler = async (event) => {
  event.response.answerCorrect = event.request.challengeAnswer === event.request.privateChallengeParameters.answer;
  return event;
};
