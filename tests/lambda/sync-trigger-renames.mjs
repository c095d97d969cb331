// A SyncTrigger that changes a field it must hand back as it was given.
export const handler = async (event) => ({ ...event, datasetName: 'elsewhere' });
