// InboundFederation: refuses the provider's users of a blocked domain; for the others, maps
// the provider's email lower-cased and a nickname naming the provider and the user there, and
// nothing else (whatever it leaves out of userAttributesToMap is not mapped).
export const handler = async (event) => {
  const { idToken, userInfo = {} } = event.request.attributes;
  const email = userInfo.email ?? idToken.email;
  if (email.endsWith('@blocked.example')) throw new Error(`${email} may not sign in here`);
  event.response.userAttributesToMap = {
    email: email.toLowerCase(),
    nickname: `${event.request.providerName}:${idToken['cognito:username']}`,
  };
  return event;
};
