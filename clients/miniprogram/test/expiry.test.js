'use strict';
// Expired session recovery, on a server whose sessions expire after 2 idle seconds.

const assert = require('node:assert/strict');
const { test, before, after } = require('node:test');

const { createClient } = require('../src/index.js');
const { standIn } = require('../support/hosts.js');
const { startServer } = require('../support/server.js');

const IDLE_TIMEOUT = 2;
let server;
before(async () => {
  server = await startServer({ idle_timeout: IDLE_TIMEOUT, touch_after: 0, login_reuse_window: 1 });
});
after(async () => { await server.stop(); });

test('an expired session is replaced by one new login, and the request succeeds', async (t) => {
  const host = standIn('wx', { code: 'dev:sleeper' });
  const ms = createClient({ baseURL: server.url, host });
  await ms.data.replace({ before: 'expiry' });
  const oldId = ms.sessionId();

  await new Promise((r) => setTimeout(r, (IDLE_TIMEOUT + 1) * 1000));
  const sentBefore = host.standIn.log.length;
  await Promise.all([ms.data.merge({ after: 1 }), ms.data.merge({ again: 2 })]);

  const refused = host.standIn.log.slice(sentBefore).filter((r) => r.status === 401);
  assert.ok(refused.length >= 1);
  assert.ok(refused.every((r) => JSON.parse(r.answer).error === 'session_expired' ||
    JSON.parse(r.answer).error === 'invalid_session'));
  assert.equal(JSON.parse(refused[0].answer).error, 'session_expired', 'the server ended the session');
  assert.deepEqual(await ms.data.get(), { after: 1, again: 2 }, 'the new session starts empty');
  assert.notEqual(ms.sessionId(), oldId);
  t.diagnostic(`after expiry: ${host.standIn.logins - 1} platform login(s), ${host.standIn.count('/login') - 1} POST /login`);
  assert.equal(host.standIn.logins, 2);
  assert.equal(host.standIn.count('/login'), 2);
  assert.deepEqual(await ms.session().then((s) => s.openid), 'sleeper');
});
