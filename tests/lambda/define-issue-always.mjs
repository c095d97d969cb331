// A careless DefineAuthChallenge: tokens for whoever asks, even for a login that names nobody.
export const handler = async (event) => {
  event.response.issueTokens = true;
  event.response.failAuthentication = false;
  return event;
};
