// A trigger slower than Cognito's 5-second limit.
export const handler = async (event) => {
  await new Promise((resolve) => setTimeout(resolve, 6000));
  return event;
};
