// Shared plumbing of the client scripts: read the JSON parameters, record the
// steps, print one JSON result, exit non-zero on failure.
//
// Every script takes its parameters as a JSON object, either as the first
// argument or (when there is none) on standard input, and prints exactly one
// JSON object on standard output:
//   {"ok": true, "steps": [...], ...results}              exit code 0
//   {"ok": false, "steps": [...], "error": {...}}         exit code 1
// `steps` names what the script did, so a failure says where it happened.

import { readFileSync } from 'node:fs';
import { createHmac, webcrypto } from 'node:crypto';

// Amplify and amazon-cognito-identity-js draw SRP's random numbers from the
// Web Crypto API; Node 20 has it as a global, older Node only in node:crypto.
if (!globalThis.crypto) {
  globalThis.crypto = webcrypto;
}

export const steps = [];

// Every HTTP call the libraries make through fetch (Amplify,
// amazon-cognito-identity-js), as {target, status, error?, request?}: the
// X-Amz-Target operation without its service prefix (or the URL for a GET)
// and, when the call failed, the error body and the request body. Reported
// with the result. (The AWS SDK v3 sends with node:http, not fetch: see
// `recordSdkCalls`.)
export const calls = [];
const realFetch = globalThis.fetch;
globalThis.fetch = async (input, init = {}) => {
  const headers = new Headers(init.headers ?? (input instanceof Request ? input.headers : undefined));
  const target = headers.get('x-amz-target') ?? `${init.method ?? 'GET'} ${String(input.url ?? input)}`;
  const call = { target: target.replace(/^AWSCognitoIdentity(Provider)?Service\./, '') };
  calls.push(call);
  const response = await realFetch(input, init);
  call.status = response.status;
  if (response.status !== 200) {
    call.error = await response.clone().text();
    if (typeof init.body === 'string') {
      call.request = init.body;
    }
  }
  return response;
};

export function step(name) {
  steps.push(name);
}

export function readParams() {
  const raw = process.argv[2] ?? readFileSync(0, 'utf8');
  return JSON.parse(raw);
}

// The fields of an error worth reporting, whatever library threw it.
export function describeError(err) {
  if (err === null || typeof err !== 'object') {
    return { message: String(err) };
  }
  return {
    name: err.name,
    code: err.code ?? err.__type ?? err.name,
    message: err.message,
    underlying: err.underlyingError ? describeError(err.underlyingError) : undefined,
    stack: err.stack ? String(err.stack).split('\n').slice(0, 8).join('\n') : undefined,
  };
}

export function finish(result) {
  process.stdout.write(JSON.stringify({ ok: true, steps, calls, ...result }) + '\n');
  process.exit(0);
}

export function fail(err, extra = {}) {
  process.stdout.write(JSON.stringify({ ok: false, steps, calls, ...extra, error: describeError(err) }) + '\n');
  process.exit(1);
}

// Run `main` with the parameters; any exception fails the script.
export function run(main) {
  let params;
  try {
    params = readParams();
  } catch (err) {
    fail(err);
  }
  Promise.resolve()
    .then(() => main(params))
    .then(finish, (err) => fail(err));
}

// Decode (without verifying) a JWT's header and payload.
export function decodeJwt(token) {
  const [header, payload] = String(token)
    .split('.')
    .slice(0, 2)
    .map((part) => JSON.parse(Buffer.from(part, 'base64url').toString('utf8')));
  return { header, payload };
}

// A key-value storage in memory, in the shape both Amplify's
// `KeyValueStorageInterface` and amazon-cognito-identity-js's `Storage`
// option take (the latter calls the methods synchronously and ignores the
// returned promise's value, so every method answers synchronously and also
// works when awaited).
export class MemoryStorage {
  constructor() {
    this.items = new Map();
  }
  setItem(key, value) {
    this.items.set(key, String(value));
  }
  getItem(key) {
    return this.items.has(key) ? this.items.get(key) : null;
  }
  removeItem(key) {
    this.items.delete(key);
  }
  clear() {
    this.items.clear();
  }
  // The stored value of the first key that ends with `suffix`.
  find(suffix) {
    for (const [key, value] of this.items) {
      if (key.endsWith(suffix)) {
        return value;
      }
    }
    return null;
  }
}

// Record every call an AWS SDK v3 client sends in `calls`, like the fetch
// hook above: {target, signed, status}. The middleware sits in the innermost
// step (deserialize, below the deserializer), so it sees the request as sent
// (signed or not) and the raw HTTP response; the scripts report error codes
// from what the SDK throws.
export function recordSdkCalls(client) {
  client.middlewareStack.add(
    (next) => async (args) => {
      const headers = args.request?.headers ?? {};
      const call = {
        target: String(headers['x-amz-target'] ?? '?').replace(/^AWSCognitoIdentity(Provider)?Service\./, ''),
        signed: Boolean(headers.authorization ?? headers.Authorization),
        sessionToken: Boolean(headers['x-amz-security-token']),
      };
      calls.push(call);
      const out = await next(args);
      call.status = out.response?.statusCode;
      return out;
    },
    { step: 'deserialize', priority: 'low', name: 'cognateRecordCalls' },
  );
  return client;
}

// The code an authenticator app shows for a base32 `secret` at `unixSeconds` (RFC 6238:
// HMAC-SHA1, 30-second steps, 6 digits), as the user would read it off their phone.
export function totp(secret, unixSeconds) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  const bits = [...secret.replace(/=+$/, '').toUpperCase()]
    .map((c) => alphabet.indexOf(c).toString(2).padStart(5, '0'))
    .join('');
  const key = Buffer.from(bits.match(/.{8}/g).map((byte) => parseInt(byte, 2)));
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(unixSeconds / 30)));
  const mac = createHmac('sha1', key).update(counter).digest();
  const offset = mac[mac.length - 1] & 15;
  return String((mac.readUInt32BE(offset) & 0x7fffffff) % 1000000).padStart(6, '0');
}
