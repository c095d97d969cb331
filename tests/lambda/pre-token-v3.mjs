// PreTokenGeneration V3_0: machine-to-machine tokens get a claim naming the calling service,
// and one scope less.
export const handler = async (event) => {
  if (event.triggerSource === 'TokenGeneration_ClientCredentials') {
    event.response.claimsAndScopeOverrideDetails = {
      accessTokenGeneration: {
        claimsToAddOrOverride: { service: `svc-${event.callerContext.clientId.slice(0, 4)}` },
        scopesToSuppress: ['orders/write'],
      },
    };
  }
  return event;
};
