// A small stand-in for AWS Lambda, for the tests: it runs trigger functions written as
// ordinary Lambda handlers, in this directory, by name:
// - `NAME.mjs` exporting `handler = async (event, context) => ...` (Node), or
// - `NAME.py` defining `handler(event, context)` (Python, run by python_runner.py).
// Two ways in, as Cognate calls functions:
// - Lambda's Invoke API: POST /2015-03-31/functions/{name or ARN}/invocations. A handler that
//   throws answers 200 with `X-Amz-Function-Error: Unhandled` and {errorMessage, errorType}, as
//   Lambda does; an unknown function 404 ResourceNotFoundException. With
//   `X-Amz-Invocation-Type: Event` (queued, as Cognito runs custom senders) it answers 202 at
//   once and runs the handler after.
// - A webhook: POST /webhook/{name} (what `[lambda.functions]` points at). A handler that
//   throws answers 500 with {errorMessage, errorType}.
// GET /calls lists the events received ({function, event}), for tests to check, each with the
// handler's `result` (or `error`) once it has finished.
//
// Usage: node host.mjs PORT [PYTHON]; prints "listening PORT" when ready.

import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer } from 'node:http';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const [port, python = 'python3'] = process.argv.slice(2);
const calls = [];

function nameOf(function_) {
  // arn:aws:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER]
  const parts = function_.split(':');
  return parts[0] === 'arn' && parts[5] === 'function' ? parts[6] : function_;
}

function context(name) {
  return {
    functionName: name,
    awsRequestId: crypto.randomUUID(),
    getRemainingTimeInMillis: () => 5000,
    callbackWaitsForEmptyEventLoop: true,
  };
}

function runPython(file, event, name) {
  return new Promise((resolve, reject) => {
    const child = spawn(python, [join(here, 'python_runner.py'), file], { stdio: ['pipe', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (chunk) => (out += chunk));
    child.on('error', reject);
    child.on('close', () => {
      try {
        const answer = JSON.parse(out);
        if (answer.error) {
          const err = new Error(answer.error.errorMessage);
          err.name = answer.error.errorType;
          reject(err);
        } else resolve(answer.result);
      } catch (err) {
        reject(new Error(`python handler ${name} printed no answer: ${out}`));
      }
    });
    child.stdin.end(JSON.stringify({ event, context: { function_name: name } }));
  });
}

async function invoke(name, event) {
  const js = join(here, `${name}.mjs`);
  const py = join(here, `${name}.py`);
  if (existsSync(js)) {
    const module = await import(pathToFileURL(js).href);
    return module.handler(event, context(name));
  }
  if (existsSync(py)) return runPython(py, event, name);
  return undefined;
}

function exists(name) {
  return existsSync(join(here, `${name}.mjs`)) || existsSync(join(here, `${name}.py`));
}

const server = createServer((req, res) => {
  let body = '';
  req.on('data', (chunk) => (body += chunk));
  req.on('end', async () => {
    const send = (status, value, headers = {}) => {
      res.writeHead(status, { 'content-type': 'application/json', ...headers });
      res.end(value === undefined ? 'null' : typeof value === 'string' ? value : JSON.stringify(value));
    };
    if (req.method === 'GET' && req.url === '/calls') return send(200, calls);
    const invocation = req.url.match(/^\/2015-03-31\/functions\/([^/]+)\/invocations/);
    const webhook = req.url.match(/^\/webhook\/([^/?]+)/);
    if (req.method !== 'POST' || !(invocation || webhook)) return send(404, { message: 'no such route' });
    const name = nameOf(decodeURIComponent((invocation ?? webhook)[1]));
    if (!exists(name)) {
      return send(404, { Type: 'User', message: `Function not found: ${name}` }, { 'x-amzn-errortype': 'ResourceNotFoundException' });
    }
    let event;
    try {
      event = JSON.parse(body);
    } catch {
      return send(400, { message: 'the event is not JSON' });
    }
    const call = { function: name, event };
    calls.push(call);
    const queued = invocation && req.headers['x-amz-invocation-type'] === 'Event';
    if (queued) send(202, '');
    try {
      const result = await invoke(name, event);
      call.result = result ?? null;
      // A handler may answer raw text on purpose (a "garbage" test): send strings as they are.
      if (!queued) send(200, result);
    } catch (err) {
      const error = { errorType: err.name ?? 'Error', errorMessage: err.message ?? String(err) };
      call.error = error;
      if (queued) return;
      if (webhook) send(500, error);
      else send(200, error, { 'x-amz-function-error': 'Unhandled' });
    }
  });
});
server.listen(Number(port), '127.0.0.1', () => console.log(`listening ${server.address().port}`));
