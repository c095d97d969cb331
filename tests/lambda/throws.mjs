// A trigger that always fails.
export const handler = async () => {
  throw new Error('Nope');
};
