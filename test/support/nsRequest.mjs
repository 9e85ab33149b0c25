// One HTTP request from wherever it runs (a test's network namespace), described by argv[2] as
// JSON {url, method?, headers?, body?}; prints {status, body} or {error: CODE}. The caller passes
// any token in the headers through the environment (NS_REQUEST_AUTHORIZATION), never argv.
import { request } from 'node:http';

const spec = JSON.parse(process.argv[2]);
const headers = { ...(spec.headers ?? {}) };
// Node sends a GET's body unframed unless told its length.
if (spec.body !== undefined) headers['content-length'] = Buffer.byteLength(spec.body);
if (process.env.NS_REQUEST_AUTHORIZATION !== undefined) headers.authorization = process.env.NS_REQUEST_AUTHORIZATION;
const url = new URL(spec.url);
const req = request(
  { host: url.hostname, port: url.port || 80, path: url.pathname + url.search, method: spec.method ?? 'GET', headers, agent: false, timeout: 5000, setHost: spec.setHost ?? true },
  (res) => {
    let body = '';
    res.setEncoding('utf8');
    res.on('data', (c) => (body += c));
    res.on('end', () => console.log(JSON.stringify({ status: res.statusCode, body })));
  },
);
req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), { code: 'ETIMEDOUT' })));
req.on('error', (error) => console.log(JSON.stringify({ error: error.code ?? error.message })));
if (spec.body !== undefined) req.write(spec.body);
req.end();
