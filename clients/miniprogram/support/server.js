'use strict';
// A real `minisession serve` for the tests: memory store, dev login provider (code
// "dev:<openid>"), loopback, a free port read back from its log, logging to a file.

const { spawn } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');

const ROOT = path.resolve(__dirname, '..', '..', '..');
const PYTHON = process.env.MINISESSION_TEST_PYTHON || 'python3';
// A session id (raw.mac) as it would appear in a log line.
const SESSION_ID_SHAPE = /[A-Za-z0-9_-]{32}\.[A-Za-z0-9_-]{22}/;

function toml(config) {
  return Object.entries(config).map(([section, table]) => `[${section}]\n` +
    Object.entries(table).map(([k, v]) => `${k} = ${JSON.stringify(v)}`).join('\n')).join('\n\n') + '\n';
}

// `apps`: {name: {platform: 'dev', ...}} serves those apps (at /login/{name}) instead of the
// one-app `[login] provider = "dev"`.
async function startServer(session = {}, apps = null) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'minisession-client-'));
  const config = {
    server: { host: '127.0.0.1', port: 0 },
    session: Object.assign({ secrets: [crypto.randomBytes(32).toString('hex')] }, session),
    store: { backend: 'memory' },
    // Tests log in often from one address: no login rate limit.
    login: Object.assign({ rate_per_address: 0, rate_overall: 0 }, apps ? {} : { provider: 'dev' }),
    log: { level: 'info' },
  };
  for (const [name, app] of Object.entries(apps || {})) config['apps.' + name] = app;
  const configPath = path.join(dir, 'server.toml');
  const logPath = path.join(dir, 'server.log');
  fs.writeFileSync(configPath, toml(config));
  const logFd = fs.openSync(logPath, 'a');
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('MINISESSION_')));
  env.PYTHONPATH = ROOT;
  const child = spawn(PYTHON, ['-m', 'server.cli', 'serve', '--config', configPath],
    { cwd: ROOT, env, stdio: ['ignore', logFd, logFd] });
  fs.closeSync(logFd);
  let exited = null;
  child.on('exit', (code) => { exited = code; });
  const log = () => fs.readFileSync(logPath, 'utf8');

  const deadline = Date.now() + 30000;
  let port = null;
  while (port === null) {
    const match = /listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(log());
    if (match) port = Number(match[1]);
    else if (exited !== null) throw new Error(`minisession exited with ${exited}:\n${log().slice(-3000)}`);
    else if (Date.now() > deadline) { child.kill('SIGKILL'); throw new Error(`minisession did not start:\n${log()}`); }
    else await new Promise((r) => setTimeout(r, 50));
  }
  const url = `http://127.0.0.1:${port}`;
  const health = await fetch(url + '/healthz');
  if (health.status !== 200) throw new Error(`/healthz answered ${health.status}`);

  return {
    url,
    log,
    async stop() {
      if (exited === null) {
        const gone = new Promise((r) => child.on('exit', r));
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 15000);
        await gone;
        clearTimeout(timer);
      }
      const leaked = SESSION_ID_SHAPE.exec(log());
      if (leaked) throw new Error(`the server logged a session id: ${leaked[0].slice(0, 6)}… in ${logPath}`);
    },
  };
}

// A real `minisession fake-platforms` (every platform's fake, WeChat at the root): its base
// URL for an app's api_base, and stop().
async function startFakePlatforms(appid, secret) {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('MINISESSION_')));
  env.PYTHONPATH = ROOT;
  const child = spawn(PYTHON, ['-m', 'server.cli', 'fake-platforms', '--port', '0',
    '--appid', appid, '--secret', secret], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (c) => { output += c; });
  child.stderr.on('data', (c) => { output += c; });
  const deadline = Date.now() + 30000;
  let match = null;
  while (!(match = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(output))) {
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`fake-platforms did not start:\n${output.slice(-3000)}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    url: match[1],
    async stop() {
      if (child.exitCode !== null) return;
      const gone = new Promise((r) => child.on('exit', r));
      child.kill('SIGTERM');
      await gone;
    },
  };
}

// A loopback port with nothing listening (connection refused).
async function closedPort() {
  const server = net.createServer();
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address();
  await new Promise((r) => server.close(r));
  return port;
}

// A server that accepts connections and never answers.
async function silentServer() {
  const sockets = new Set();
  const server = net.createServer((s) => { sockets.add(s); s.on('close', () => sockets.delete(s)); });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    close: () => { sockets.forEach((s) => s.destroy()); return new Promise((r) => server.close(r)); },
  };
}

module.exports = { startServer, startFakePlatforms, closedPort, silentServer };
