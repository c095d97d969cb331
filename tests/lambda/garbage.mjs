// A trigger that answers something that is not an event.
export const handler = async () => 'this is not JSON';
