/**
 * Preloaded into `vault exec` (node --import) by bench/figures/execBreakdown.mjs: marks, on the
 * wall clock (performance.timeOrigin + now(), comparable with the parent's), when Node had started
 * (this module runs), when vault first touched the config file, each control-socket request to
 * the daemon and its answer, and the spawn (Node 20) or execve (Node 22.15+/24) of the command and
 * the child's exit. Prints them as one `VAULT_PHASES {…}` line on stderr — at exit, or just before
 * execve replaces the process. It changes nothing vault does: the wrapped functions call through.
 * Named imports of built-ins are ESM bindings; syncBuiltinESMExports makes vault's bundle see the
 * wrappers.
 */
import childProcess from 'node:child_process';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import { createRequire, syncBuiltinESMExports } from 'node:module';

// node:http through require, as vault's bundle gets it: on Node 22+ an ES import of it loads
// undici (http.WebSocket's lazy getter), ~55 ms this preload would add to "Node starts".
const http = createRequire(import.meta.url)('node:http');

const marks = [];
const now = () => performance.timeOrigin + performance.now();
const mark = (name) => marks.push([name, now()]);
mark('preload');
let printed = false;
const print = () => {
  if (printed) return;
  printed = true;
  fs.writeSync(2, `\nVAULT_PHASES ${JSON.stringify(marks)}\n`);
};

const isConfig = (path) => typeof path === 'string' && /(^|\/)\.aws\/config$|\/config$/.test(path) && path === (process.env.AWS_CONFIG_FILE ?? `${process.env.HOME}/.aws/config`);
for (const [target, name] of [[fsp, 'readFile'], [fs, 'readFileSync'], [fs, 'statSync'], [fsp, 'stat']]) {
  const original = target[name];
  target[name] = function (path, ...rest) {
    if (isConfig(path)) mark(`config:${name}`);
    return original.call(this, path, ...rest);
  };
}

const request = http.request;
http.request = function (...args) {
  const options = args.find((a) => a && typeof a === 'object' && !(a instanceof URL));
  const req = request.apply(this, args);
  if (options?.socketPath) {
    mark('daemon:request');
    req.on('response', (res) => res.on('end', () => mark('daemon:answered')));
  }
  return req;
};

const spawn = childProcess.spawn;
childProcess.spawn = function (...args) {
  mark('spawn');
  const child = spawn.apply(this, args);
  child.on('exit', () => mark('child:exit'));
  return child;
};

if (typeof process.execve === 'function') {
  const execve = process.execve;
  process.execve = function (...args) {
    mark('execve');
    print();
    return execve.apply(this, args);
  };
}
syncBuiltinESMExports();
process.on('exit', print);
