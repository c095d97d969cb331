// PreTokenGeneration V2_0: typed claims in both tokens, and the access token's scopes changed.
export const handler = async (event) => {
  event.response = {
    claimsAndScopeOverrideDetails: {
      idTokenGeneration: { claimsToAddOrOverride: { tenant: { id: 7, name: 'Acme' } } },
      accessTokenGeneration: {
        claimsToAddOrOverride: { tenant_id: 't-7', seats: 25 },
        scopesToAdd: ['orders/read'],
        scopesToSuppress: ['aws.cognito.signin.user.admin'],
      },
    },
  };
  return event;
};
