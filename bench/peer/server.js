// The peer a user would pick instead of minisession, for bench/run.py: express-session with
// connect-mongo on the same FerretDB (scenario 6), or with its own MemoryStore (scenario 2p, the
// peer of the memory store), serving the same GET /session.
//
//   node bench/peer/server.js --port 8899 --mongodb-uri mongodb://127.0.0.1:27017/ --database peer
//   node bench/peer/server.js --port 8899 --store memory
//
// POST /login?openid=<id> creates a session (the harness does this first, then sends the
// signed cookie by hand, as a mini-program would). GET /session answers the same fields as
// minisession's. Settings mirror minisession's defaults: touchAfter = touch_after (60 s),
// expiry = idle_timeout (7200 s), expired sessions swept every minute (FerretDB has no TTL
// indexes, so connect-mongo's default autoRemove 'native' would fail on start). Like
// minisession at its default log.level, it writes one access-log line per request (to stdout,
// which the harness sends to a file).
'use strict';

const { parseArgs } = require('node:util');
const express = require('express');
const session = require('express-session');
const { MongoStore } = require('connect-mongo');

const { values: args } = parseArgs({
  options: {
    port: { type: 'string', default: '8899' },
    store: { type: 'string', default: 'mongodb' },
    'mongodb-uri': { type: 'string' },
    database: { type: 'string', default: 'bench_peer' },
    'touch-after': { type: 'string', default: '60' },
    'idle-timeout': { type: 'string', default: '7200' },
  },
});
if (args.store !== 'memory' && args.store !== 'mongodb') {
  console.error('--store is memory or mongodb');
  process.exit(2);
}
if (args.store === 'mongodb' && !args['mongodb-uri']) {
  console.error('--mongodb-uri is required');
  process.exit(2);
}
const idleTimeout = Number(args['idle-timeout']);

// express-session's own MemoryStore when none is given (it sweeps nothing: expired sessions
// are dropped when read, as minisession's memory store does between its purges).
const store = args.store === 'memory' ? undefined : MongoStore.create({
  mongoUrl: args['mongodb-uri'],
  dbName: args.database,
  ttl: idleTimeout,
  touchAfter: Number(args['touch-after']),
  autoRemove: 'interval',
  autoRemoveInterval: 1, // minutes: the same sweep as minisession's purge_interval = 60
});

const app = express();
app.disable('x-powered-by');
app.disable('etag'); // as minisession: session answers are never served as 304
// The access-log line minisession writes at its default log.level: time, status, method,
// path, duration.
app.use((req, res, next) => {
  const started = process.hrtime.bigint();
  res.on('finish', () => {
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    process.stdout.write(`${new Date().toISOString()} INFO peer.access: ${res.statusCode} `
      + `${req.method} ${req.path} ${ms.toFixed(1)}ms\n`);
  });
  next();
});
app.use(session({
  secret: 'bench-peer-signing-secret-0123456789abcdef',
  name: 'connect.sid',
  store,
  resave: false,
  saveUninitialized: false,
  cookie: { maxAge: idleTimeout * 1000, httpOnly: true, sameSite: 'lax' },
}));

function iso(date) {
  return date.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

app.get('/healthz', (req, res) => res.json({ status: 'ok' }));

app.post('/login', (req, res) => {
  const openid = String(req.query.openid || '');
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(openid)) {
    return res.status(400).json({ error: 'missing_code', message: 'send ?openid=' });
  }
  req.session.openid = openid;
  req.session.createdAt = Date.now();
  return res.json({ openid });
});

app.get('/session', (req, res) => {
  res.set('Cache-Control', 'no-store');
  if (!req.session.openid) {
    return res.status(401).json({ error: 'invalid_session', message: 'log in again' });
  }
  const expires = req.session.cookie.expires;
  return res.json({
    openid: req.session.openid,
    created_at: iso(new Date(req.session.createdAt)),
    expires_at: iso(expires),
    expires_in: Math.max(0, Math.round((expires.getTime() - Date.now()) / 1000)),
  });
});

const server = app.listen(Number(args.port), '127.0.0.1', () => {
  console.log(`peer listening on http://127.0.0.1:${server.address().port}`);
});

function stop() {
  server.close();
  if (!store) process.exit(0);
  store.close().finally(() => process.exit(0));
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
