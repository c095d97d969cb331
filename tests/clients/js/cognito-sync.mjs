// @aws-sdk/client-cognito-sync (AWS SDK for JavaScript v3) against a
// Cognito-compatible endpoint, signed with identities' temporary credentials
// from @aws-sdk/client-cognito-identity and @aws-sdk/credential-providers.
//
// Parameters:
//   endpoint        "http://127.0.0.1:PORT"
//   identityPoolId  a pool allowing guests, with a guest role
//   mode            "cycle" (default), "issue" or "use"
//
// mode "cycle": two guest identities, the owner and a stranger. The owner's
// data is synced from two "devices": device A signs with fromCognitoIdentity
// (credential-providers), device B with the static credentials of its own
// GetCredentialsForIdentity call (client-cognito-identity), the stranger with
// fromCognitoIdentity for its identity.
//   B: ListRecords (empty, token)            -> first
//   A: ListRecords, UpdateRecords (theme=dark, lang=fr at SyncCount 0) -> updatedA
//   B: UpdateRecords with SyncCount 0 (theme=light, font=serif)        -> conflict (refused)
//   B: ListRecords lastSyncCount 0           -> incrementalB
//   B: UpdateRecords at the current counts (theme=light, remove lang, font=serif) -> resolved
//   A: ListRecords lastSyncCount 1 and 2     -> incrementalA, nothingNewer
//   stranger: ListRecords, UpdateRecords, ListDatasets on the owner's data -> foreign
//   A: ListDatasets, DescribeDataset, DescribeIdentityUsage -> datasets, described, usage
// Result: ownerId, identityPoolId, those fields (records as {Key, Value,
// SyncCount, LastModifiedBy}; refusals as {code, status}; dates dropped after
// checking they are Dates), and `calls`: every Cognito Sync request as
// {method, path, signed, sessionToken, status}.
//
// mode "issue": GetId and GetCredentialsForIdentity (client-cognito-identity).
// Result: identityId, credentials {accessKeyId, secretAccessKey, sessionToken,
// expiration (epoch seconds)}.
//
// mode "use" (parameters identityId and credentials as "issue" printed them):
// ListRecords and DescribeIdentityUsage signed with those as static
// credentials (which the SDK cannot refresh), then with new credentials for
// the same identity. Result: listRecords and describeIdentityUsage (each
// {code, status, message} if refused, or {ok: true}), fresh ({ok, records}).

import { CognitoIdentityClient, GetCredentialsForIdentityCommand, GetIdCommand } from '@aws-sdk/client-cognito-identity';
import {
  CognitoSyncClient,
  DescribeDatasetCommand,
  DescribeIdentityUsageCommand,
  ListDatasetsCommand,
  ListRecordsCommand,
  UpdateRecordsCommand,
} from '@aws-sdk/client-cognito-sync';
import { fromCognitoIdentity } from '@aws-sdk/credential-providers';
import { calls, run, step } from './lib.mjs';

const REGION = 'us-east-1';
const DATASET = 'settings';

// Every request a Cognito Sync client sends, as sent (signed or not) and the
// HTTP status it got, into lib.mjs's `calls`.
function recorded(client) {
  client.middlewareStack.add(
    (next) => async (args) => {
      const request = args.request ?? {};
      const headers = request.headers ?? {};
      const call = {
        method: request.method,
        path: request.path,
        signed: Boolean(headers.authorization ?? headers.Authorization),
        sessionToken: Boolean(headers['x-amz-security-token']),
      };
      calls.push(call);
      try {
        const out = await next(args);
        call.status = out.response?.statusCode;
        return out;
      } catch (err) {
        call.status = err.$metadata?.httpStatusCode ?? err.$response?.statusCode;
        throw err;
      }
    },
    { step: 'deserialize', priority: 'low', name: 'cognateRecordSyncCalls' },
  );
  return client;
}

function syncClient(params, credentials) {
  return recorded(new CognitoSyncClient({ region: REGION, endpoint: params.endpoint, credentials, maxAttempts: 1 }));
}

function identityClient(params) {
  // GetId and GetCredentialsForIdentity are unsigned; no credentials needed.
  return new CognitoIdentityClient({ region: REGION, endpoint: params.endpoint, maxAttempts: 1 });
}

// The error of a call that must fail, as {code, status, message}.
async function refused(what, call) {
  let out;
  try {
    out = await call();
  } catch (err) {
    if (!err.$metadata) {
      throw err;
    }
    return { code: err.name, status: err.$metadata.httpStatusCode, message: err.message };
  }
  throw new Error(`${what} succeeded: ${JSON.stringify(out)}`);
}

function records(out) {
  return (out.Records ?? []).map((r) => {
    if (!(r.LastModifiedDate instanceof Date) || Number.isNaN(r.LastModifiedDate.getTime())) {
      throw new Error(`record without a LastModifiedDate: ${JSON.stringify(r)}`);
    }
    return { Key: r.Key, Value: r.Value ?? null, SyncCount: r.SyncCount, LastModifiedBy: r.LastModifiedBy };
  });
}

// A ListRecords answer without its token and dates.
function listed(out) {
  if (!out.SyncSessionToken) {
    throw new Error(`ListRecords without a SyncSessionToken: ${JSON.stringify(out)}`);
  }
  return {
    records: records(out),
    count: out.Count,
    datasetSyncCount: out.DatasetSyncCount,
    lastModifiedBy: out.LastModifiedBy ?? null,
    exists: out.DatasetExists,
    deletedAfter: out.DatasetDeletedAfterRequestedSyncCount,
    merged: out.MergedDatasetNames ?? [],
  };
}

function withoutDates(obj) {
  const out = {};
  for (const [key, value] of Object.entries(obj)) {
    if (key.endsWith('Date')) {
      if (!(value instanceof Date)) {
        throw new Error(`${key} is not a date: ${JSON.stringify(obj)}`);
      }
    } else {
      out[key] = value;
    }
  }
  return out;
}

async function cycle(params) {
  const cognito = identityClient(params);
  const pool = params.identityPoolId;
  step('GetId for the owner and a stranger');
  const ownerId = (await cognito.send(new GetIdCommand({ IdentityPoolId: pool }))).IdentityId;
  const strangerId = (await cognito.send(new GetIdCommand({ IdentityPoolId: pool }))).IdentityId;
  const clientConfig = { region: REGION, endpoint: params.endpoint };
  const deviceA = syncClient(params, fromCognitoIdentity({ identityId: ownerId, clientConfig }));
  step('GetCredentialsForIdentity for device B');
  const b = (await cognito.send(new GetCredentialsForIdentityCommand({ IdentityId: ownerId }))).Credentials;
  const deviceB = syncClient(params, {
    accessKeyId: b.AccessKeyId,
    secretAccessKey: b.SecretKey,
    sessionToken: b.SessionToken,
  });
  const stranger = syncClient(params, fromCognitoIdentity({ identityId: strangerId, clientConfig }));
  const where = { IdentityPoolId: pool, IdentityId: ownerId, DatasetName: DATASET };

  step('device B: ListRecords (empty)');
  const first = await deviceB.send(new ListRecordsCommand(where));
  step('device A: ListRecords, UpdateRecords');
  const a0 = await deviceA.send(new ListRecordsCommand(where));
  const updatedA = await deviceA.send(
    new UpdateRecordsCommand({
      ...where,
      DeviceId: 'device-a',
      SyncSessionToken: a0.SyncSessionToken,
      RecordPatches: [
        { Op: 'replace', Key: 'theme', Value: 'dark', SyncCount: 0 },
        { Op: 'replace', Key: 'lang', Value: 'fr', SyncCount: 0 },
      ],
    }),
  );
  step('device B: UpdateRecords with a stale SyncCount');
  const conflict = await refused('UpdateRecords with a stale SyncCount', () =>
    deviceB.send(
      new UpdateRecordsCommand({
        ...where,
        DeviceId: 'device-b',
        SyncSessionToken: first.SyncSessionToken,
        RecordPatches: [
          { Op: 'replace', Key: 'theme', Value: 'light', SyncCount: 0 },
          { Op: 'replace', Key: 'font', Value: 'serif', SyncCount: 0 },
        ],
      }),
    ),
  );
  step('device B: ListRecords incremental, resolve');
  const incrementalB = await deviceB.send(new ListRecordsCommand({ ...where, LastSyncCount: 0 }));
  const count = (key) => incrementalB.Records.find((r) => r.Key === key)?.SyncCount ?? 0;
  const resolved = await deviceB.send(
    new UpdateRecordsCommand({
      ...where,
      DeviceId: 'device-b',
      SyncSessionToken: incrementalB.SyncSessionToken,
      RecordPatches: [
        { Op: 'replace', Key: 'theme', Value: 'light', SyncCount: count('theme') },
        { Op: 'remove', Key: 'lang', SyncCount: count('lang') },
        { Op: 'replace', Key: 'font', Value: 'serif', SyncCount: count('font') },
      ],
    }),
  );
  step('device A: ListRecords incremental');
  const incrementalA = await deviceA.send(new ListRecordsCommand({ ...where, LastSyncCount: 1 }));
  const nothingNewer = await deviceA.send(new ListRecordsCommand({ ...where, LastSyncCount: 2 }));

  step("the stranger's credentials on the owner's data");
  const foreign = {
    listRecords: await refused('ListRecords by a stranger', () => stranger.send(new ListRecordsCommand(where))),
    updateRecords: await refused('UpdateRecords by a stranger', () =>
      stranger.send(
        new UpdateRecordsCommand({
          ...where,
          DeviceId: 'intruder',
          SyncSessionToken: nothingNewer.SyncSessionToken,
          RecordPatches: [{ Op: 'replace', Key: 'theme', Value: 'x', SyncCount: 2 }],
        }),
      ),
    ),
    listDatasets: await refused('ListDatasets by a stranger', () =>
      stranger.send(new ListDatasetsCommand({ IdentityPoolId: pool, IdentityId: ownerId })),
    ),
  };
  step('ListDatasets, DescribeDataset, DescribeIdentityUsage');
  const afterForeign = await deviceA.send(new ListRecordsCommand({ ...where, LastSyncCount: 2 }));
  const datasets = await deviceA.send(new ListDatasetsCommand({ IdentityPoolId: pool, IdentityId: ownerId }));
  const described = await deviceA.send(new DescribeDatasetCommand(where));
  const usage = await deviceA.send(new DescribeIdentityUsageCommand({ IdentityPoolId: pool, IdentityId: ownerId }));

  return {
    ownerId,
    strangerId,
    first: listed(first),
    updatedA: records(updatedA),
    conflict,
    incrementalB: listed(incrementalB),
    resolved: records(resolved),
    incrementalA: listed(incrementalA),
    nothingNewer: listed(nothingNewer),
    foreign,
    afterForeign: listed(afterForeign),
    datasets: { count: datasets.Count, datasets: datasets.Datasets.map(withoutDates) },
    described: withoutDates(described.Dataset),
    usage: withoutDates(usage.IdentityUsage),
  };
}

async function issue(params) {
  const cognito = identityClient(params);
  step('GetId, GetCredentialsForIdentity');
  const identityId = (await cognito.send(new GetIdCommand({ IdentityPoolId: params.identityPoolId }))).IdentityId;
  const c = (await cognito.send(new GetCredentialsForIdentityCommand({ IdentityId: identityId }))).Credentials;
  return {
    identityId,
    credentials: {
      accessKeyId: c.AccessKeyId,
      secretAccessKey: c.SecretKey,
      sessionToken: c.SessionToken,
      expiration: Math.floor(c.Expiration.getTime() / 1000),
    },
  };
}

async function use(params) {
  const { accessKeyId, secretAccessKey, sessionToken } = params.credentials;
  const client = syncClient(params, { accessKeyId, secretAccessKey, sessionToken });
  const where = { IdentityPoolId: params.identityPoolId, IdentityId: params.identityId, DatasetName: DATASET };
  const outcome = async (call) => {
    try {
      await call();
      return { ok: true };
    } catch (err) {
      if (!err.$metadata) {
        throw err;
      }
      return { code: err.name, status: err.$metadata.httpStatusCode, message: err.message };
    }
  };
  step('ListRecords with the given credentials');
  const listRecords = await outcome(() => client.send(new ListRecordsCommand(where)));
  step('DescribeIdentityUsage with the given credentials');
  const describeIdentityUsage = await outcome(() =>
    client.send(new DescribeIdentityUsageCommand({ IdentityPoolId: params.identityPoolId, IdentityId: params.identityId })),
  );
  step('ListRecords with new credentials for the same identity');
  const clientConfig = { region: REGION, endpoint: params.endpoint };
  const fresh = syncClient(params, fromCognitoIdentity({ identityId: params.identityId, clientConfig }));
  const out = await fresh.send(new ListRecordsCommand(where));
  return { listRecords, describeIdentityUsage, fresh: { ok: true, records: records(out), exists: out.DatasetExists } };
}

run(async (params) => {
  const mode = params.mode ?? 'cycle';
  const modes = { cycle, issue, use };
  if (!modes[mode]) {
    throw new Error(`unknown mode ${mode}`);
  }
  return modes[mode](params);
});
