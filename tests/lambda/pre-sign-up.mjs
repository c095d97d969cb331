// PreSignUp: closes sign-ups from one domain, and confirms (and verifies the email of) users
// who bring an invitation in ValidationData.
export const handler = async (event) => {
  const email = event.request.userAttributes.email ?? '';
  if (email.endsWith('@blocked.example')) {
    throw new Error('Sign-ups from blocked.example are closed');
  }
  if (event.request.validationData?.invitation === 'welcome') {
    event.response.autoConfirmUser = true;
    event.response.autoVerifyEmail = true;
  }
  return event;
};
