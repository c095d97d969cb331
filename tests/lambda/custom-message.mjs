// CustomMessage: Acme's wording for every message, naming its trigger source, with the code
// (and, in invitations, the user name) where the request's placeholders say. It refuses to
// write to mallory, or when ClientMetadata asks it to; with `style: forgetful` it leaves the
// code out (a message Cognito does not send).
export const handler = async (event) => {
  const { codeParameter, usernameParameter, clientMetadata } = event.request;
  if (event.userName === 'mallory' || clientMetadata?.refuse === 'yes') {
    throw new Error(`No message for ${event.userName}`);
  }
  if (clientMetadata?.style === 'forgetful') {
    event.response.emailSubject = 'Welcome';
    event.response.emailMessage = 'Welcome aboard!';
    event.response.smsMessage = 'Welcome aboard!';
    return event;
  }
  const who = usernameParameter ? `${usernameParameter} ` : '';
  event.response.emailSubject = `[Acme] ${event.triggerSource}`;
  event.response.emailMessage = `Acme ${event.triggerSource}: ${who}code ${codeParameter}`;
  event.response.smsMessage = `Acme ${event.triggerSource}: ${who}code ${codeParameter}`;
  return event;
};
