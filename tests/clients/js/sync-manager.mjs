// The legacy amazon-cognito-js CognitoSyncManager (on the AWS SDK for
// JavaScript v2, `aws-sdk`) against a Cognito-compatible endpoint, in Node.
//
// It runs in Node as published: its UMD bundle takes `require('aws-sdk')`
// and adds AWS.CognitoSyncManager to it; the one browser API it touches is
// window.localStorage, and only in its default store, so each manager here
// gets the in-memory store the package ships (DataStore: StoreInMemory).
// AWS.CognitoIdentityCredentials gets the identity and its credentials
// (GetId, GetCredentialsForIdentity), the managers' AWS.CognitoSync clients
// are pointed at the endpoint through AWS.config.cognitosync.
//
// Parameters:
//   endpoint, identityPoolId (allowing guests, with a guest role)
// The SDK v2 signer is used as published: it never signs Content-Type
// ('content-type' is in AWS.Signers.V4's unsignableHeaders).
//
// Two devices of one guest identity, each a CognitoSyncManager with its own
// credentials (CognitoIdentityCredentials, B's given A's IdentityId) and its
// own local store:
//   A: put theme=dark, lang=fr; synchronize()          -> a1
//   B: synchronize() (pulls), getAll                    -> b1
//   A: put theme=blue; synchronize()                    -> a2
//   B: put theme=light; synchronize(): onConflict gets theme (local light,
//      remote blue), resolved with the local record    -> b2, conflicts
//   A: synchronize(), getAll                            -> a3
//   ListRecords (AWS.CognitoSync with A's credentials)  -> server
// Each synchronize result is {outcome: "success" | "failure", error?}.
// `calls` lists every SDK v2 request: {service, operation, status, error?}.

import { createRequire } from 'node:module';
import { calls, run, step } from './lib.mjs';

const require = createRequire(import.meta.url);
// The SDK v2 prints a maintenance-mode notice on load; it is not our output.
process.env.AWS_SDK_JS_SUPPRESS_MAINTENANCE_MODE_MESSAGE = '1';
const AWS = require('aws-sdk');
require('amazon-cognito-js');

const REGION = 'us-east-1';

AWS.events.on('complete', (response) => {
  const call = {
    service: response.request.service.serviceIdentifier,
    operation: response.request.operation,
    status: response.httpResponse.statusCode,
  };
  if (response.error) {
    call.error = { code: response.error.code, message: response.error.message };
  }
  calls.push(call);
});

function credentialsFor(params, identityId) {
  const credentials = new AWS.CognitoIdentityCredentials(
    { IdentityPoolId: params.identityPoolId, ...(identityId ? { IdentityId: identityId } : {}) },
    { region: REGION, endpoint: params.endpoint, maxRetries: 0 },
  );
  return credentials.getPromise().then(() => credentials);
}

// A manager on its own credentials and in-memory store. The manager (and its
// AWS.CognitoSync client) takes AWS.config.credentials when it is made.
function managerWith(credentials) {
  AWS.config.credentials = credentials;
  return new AWS.CognitoSyncManager({ DataStore: AWS.CognitoSyncManager.StoreInMemory });
}

const promised = (fn) =>
  new Promise((resolve, reject) => fn((err, value) => (err ? reject(err) : resolve(value))));

function openDataset(manager, name) {
  return promised((cb) => manager.openOrCreateDataset(name, cb));
}

// dataset.synchronize(), with conflicts resolved by `onConflict(conflicts)`
// (which returns the resolved records) or refused when it is absent.
function synchronize(dataset, onConflict) {
  return new Promise((resolve) => {
    dataset.synchronize({
      onSuccess: () => resolve({ outcome: 'success' }),
      onFailure: (err) => resolve({ outcome: 'failure', error: String(err?.message ?? err) }),
      onConflict: (ds, conflicts, callback) => {
        if (!onConflict) {
          return callback(false);
        }
        const resolved = onConflict(conflicts);
        return ds.resolve(resolved, () => callback(true));
      },
      onDatasetDeleted: (ds, name, callback) => callback(false),
      onDatasetsMerged: (ds, names, callback) => callback(false),
    });
  });
}

run(async (params) => {
  AWS.config.update({ region: REGION, maxRetries: 0 });
  AWS.config.cognitosync = { endpoint: params.endpoint };

  step('device A: CognitoIdentityCredentials (GetId, GetCredentialsForIdentity)');
  const credentialsA = await credentialsFor(params);
  const identityId = credentialsA.identityId;
  step('device B: CognitoIdentityCredentials for the same identity');
  const credentialsB = await credentialsFor(params, identityId);
  if (credentialsB.identityId !== identityId || credentialsB.accessKeyId === credentialsA.accessKeyId) {
    throw new Error(`device B: identity ${credentialsB.identityId}, key ${credentialsB.accessKeyId}`);
  }
  const managerA = managerWith(credentialsA);
  const managerB = managerWith(credentialsB);
  const datasetA = await openDataset(managerA, 'settings');
  const datasetB = await openDataset(managerB, 'settings');

  step('device A: put theme and lang, synchronize');
  await promised((cb) => datasetA.putAll({ theme: 'dark', lang: 'fr' }, cb));
  const a1 = await synchronize(datasetA);
  step('device B: synchronize (pull)');
  const b1 = { ...(await synchronize(datasetB)), values: await promised((cb) => datasetB.getAll(cb)) };
  step('device A: put theme=blue, synchronize');
  await promised((cb) => datasetA.put('theme', 'blue', cb));
  const a2 = await synchronize(datasetA);
  step('device B: put theme=light, synchronize (conflict, resolved with the local record)');
  await promised((cb) => datasetB.put('theme', 'light', cb));
  const conflicts = [];
  const b2 = await synchronize(datasetB, (found) =>
    found.map((c) => {
      conflicts.push({ key: c.getKey(), local: c.getLocalRecord().getValue(), remote: c.getRemoteRecord().getValue() });
      return c.resolveWithLocalRecord();
    }),
  );
  b2.values = await promised((cb) => datasetB.getAll(cb));
  step('device A: synchronize (pull)');
  const a3 = { ...(await synchronize(datasetA)), values: await promised((cb) => datasetA.getAll(cb)) };

  step('ListRecords with AWS.CognitoSync');
  const sync = new AWS.CognitoSync({ credentials: credentialsA });
  const listed = await sync
    .listRecords({ IdentityPoolId: params.identityPoolId, IdentityId: identityId, DatasetName: 'settings' })
    .promise();
  const server = {
    datasetSyncCount: listed.DatasetSyncCount,
    records: listed.Records.map((r) => ({ Key: r.Key, Value: r.Value ?? null, SyncCount: r.SyncCount })),
  };
  return { identityId, a1, b1, a2, b2, conflicts, a3, server };
});
