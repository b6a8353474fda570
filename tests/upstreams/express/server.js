// An unchanged Express app with express-session (signed connect.sid cookie, the default
// MemoryStore). It knows nothing of minisession. Usage: node server.js PORT
//   /counter             counts this session's requests
//   /login?user=NAME     logs NAME in, with a new session id (req.session.regenerate)
//   /whoami              who this session is, and the Cookie header Express got
//   /set/NAME            sets cookie NAME (for the jar's concurrency test)
//   /flood?n=N&size=S    sets N cookies of S bytes (for the jar's size limit)
'use strict';
const express = require('express');
const session = require('express-session');

const app = express();
app.use(session({
  secret: 'upstream-test-signing-secret',
  resave: false,
  saveUninitialized: false,
  cookie: { httpOnly: true, sameSite: 'lax' },
}));

app.get('/counter', (req, res) => {
  req.session.count = (req.session.count || 0) + 1;
  res.json({ count: req.session.count, user: req.session.user || null, session: req.sessionID });
});

app.get('/login', (req, res, next) => {
  const previous = req.sessionID;
  req.session.regenerate((err) => {
    if (err) return next(err);
    req.session.user = req.query.user || 'someone';
    res.json({ user: req.session.user, session: req.sessionID, previous });
  });
});

app.get('/whoami', (req, res) => {
  res.json({ user: req.session.user || null, session: req.sessionID,
             cookie: req.headers.cookie || null });
});

app.get('/set/:name', (req, res) => {
  res.cookie(req.params.name, `value-of-${req.params.name}`, { path: '/' });
  res.json({ set: req.params.name });
});

app.get('/flood', (req, res) => {
  const n = Number(req.query.n), size = Number(req.query.size);
  for (let i = 0; i < n; i++) res.cookie(`flood${i}`, 'x'.repeat(size), { path: '/' });
  res.json({ set: n });
});

const server = app.listen(Number(process.argv[2]), '127.0.0.1', () => {
  console.log(`express upstream listening on ${server.address().port}`);
});
process.on('SIGTERM', () => process.exit(0));
