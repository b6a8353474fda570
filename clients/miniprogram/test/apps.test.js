'use strict';
// The `app` option against a real server that serves two apps: each client logs in at
// /login/{app} and gets that app's session, and the same openid in two apps is two identities.

const assert = require('node:assert/strict');
const { test, before, after } = require('node:test');

const { createClient } = require('../src/index.js');
const { standIn } = require('../support/hosts.js');
const { startServer } = require('../support/server.js');

let server;
before(async () => { server = await startServer({}, { shop: { platform: 'dev' }, lab: { platform: 'dev' } }); });
after(async () => { await server.stop(); });

function client(app, code) {
  const host = standIn('wx', { code });
  return { host, ms: createClient({ baseURL: server.url, host, app, storageKey: 'session-' + app }) };
}

test('each app option logs in to its own app, and one openid in two apps is two sessions', async () => {
  const shop = client('shop', 'dev:ann');
  const lab = client('lab', 'dev:ann');
  const [inShop, inLab] = await Promise.all([shop.ms.login(), lab.ms.login()]);
  assert.equal(shop.host.standIn.log[0].path, '/login/shop');
  assert.equal(lab.host.standIn.log[0].path, '/login/lab');
  assert.deepEqual([inShop.app, inShop.openid, inLab.app, inLab.openid], ['shop', 'ann', 'lab', 'ann']);
  assert.notEqual(shop.ms.sessionId(), lab.ms.sessionId());

  await shop.ms.data.merge({ cart: 2 });
  await lab.ms.data.merge({ runs: 1 });
  assert.deepEqual(await shop.ms.data.get(), { cart: 2 });
  assert.deepEqual(await lab.ms.data.get(), { runs: 1 });
  assert.equal((await shop.ms.session()).app, 'shop');

  // Logging out of one app leaves the other alone.
  await shop.ms.logout();
  assert.equal(await shop.ms.session(), null);
  assert.equal((await lab.ms.session()).app, 'lab');
});

test('an app the server does not serve is a clear 404 unknown_app', async () => {
  const { ms } = client('nope', 'dev:bob');
  await assert.rejects(ms.login(), { status: 404, code: 'unknown_app' });
});
