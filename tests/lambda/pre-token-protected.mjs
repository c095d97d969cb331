// PreTokenGeneration that tries to impersonate someone else: Cognito refuses it.
export const handler = async (event) => {
  event.response.claimsOverrideDetails = { claimsToAddOrOverride: { sub: 'someone-else' } };
  return event;
};
