// PostAuthentication: nothing to change; it runs after a successful sign-in.
export const handler = async (event) => event;
