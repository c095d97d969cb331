// DefineAuthChallenge of a quiz sign-in: an optional password first (SRP), then one question;
// three wrong answers end the sign-in.
export const handler = async (event) => {
  const session = event.request.session;
  const last = session.at(-1);
  const wrong = session.filter((s) => s.challengeName === 'CUSTOM_CHALLENGE' && !s.challengeResult).length;
  if (event.request.userNotFound || wrong >= 3) {
    event.response.issueTokens = false;
    event.response.failAuthentication = true;
  } else if (last?.challengeName === 'SRP_A') {
    event.response.challengeName = 'PASSWORD_VERIFIER';
  } else if (last?.challengeName === 'CUSTOM_CHALLENGE' && last.challengeResult) {
    event.response.issueTokens = true;
    event.response.failAuthentication = false;
  } else {
    event.response.challengeName = 'CUSTOM_CHALLENGE';
    event.response.issueTokens = false;
    event.response.failAuthentication = false;
  }
  return event;
};
