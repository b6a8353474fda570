'use strict';
// The example app (examples/miniprogram) run under the wx stand-in against a real server:
// App() and Page() are the host's registration calls, reproduced here.

const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { test, before, after } = require('node:test');

const { standIn } = require('../support/hosts.js');
const { startServer } = require('../support/server.js');

const EXAMPLE = path.resolve(__dirname, '..', '..', '..', 'examples', 'miniprogram');
let server;
before(async () => {
  server = await startServer();
  // What `npm install` in the example does with its file: dependency.
  const link = path.join(EXAMPLE, 'node_modules', 'minisession-miniprogram');
  if (!fs.existsSync(link)) {
    fs.mkdirSync(path.dirname(link), { recursive: true });
    fs.symlinkSync(path.relative(path.dirname(link), path.resolve(__dirname, '..')), link);
  }
});
after(async () => { await server.stop(); });

// Launch the example app on a fresh stand-in: its App and its index page.
async function launch(host) {
  let app;
  let pageOptions;
  Object.assign(global, {
    wx: host,
    App: (options) => { app = Object.assign({}, options); },
    Page: (options) => { pageOptions = options; },
    getApp: () => app,
  });
  for (const file of ['app.js', 'pages/index/index.js']) {
    const full = path.join(EXAMPLE, file);
    delete require.cache[full];
    require(full);
  }
  app.globalData = Object.assign({}, app.globalData, { baseURL: server.url });
  app.onLaunch();
  const page = Object.assign({}, pageOptions, { data: Object.assign({}, pageOptions.data) });
  page.setData = (patch) => Object.assign(page.data, patch);
  await page.onLoad();
  return { app, page };
}

after(() => { for (const name of ['wx', 'App', 'Page', 'getApp']) delete global[name]; });

test('the example logs in on launch and counts visits in its session', async () => {
  const host = standIn('wx', { code: 'dev:example-user', headerCase: 'lower', cookies: 'array' });
  const { page } = await launch(host);
  assert.equal(page.data.openid, 'example-user');
  assert.equal(page.data.visits, 1);
  await page.countVisit();
  await page.countVisit();
  assert.equal(page.data.visits, 3);
  assert.equal(page.data.error, '');
  assert.equal(host.standIn.logins, 1);

  // Relaunched with the stored, still valid session: no new login, same visits.
  const again = await launch(host);
  assert.equal(again.page.data.visits, 4);
  assert.equal(host.standIn.logins, 1);
});

test('the example recovers when the server ended the session', async () => {
  const host = standIn('wx', { code: 'dev:example-revoked' });
  const { app, page } = await launch(host);
  await fetch(server.url + '/session', { method: 'DELETE', headers: { 'X-Session': app.session.sessionId() } });
  await page.countVisit();
  assert.equal(page.data.visits, 1, 'a new session');
  assert.equal(page.data.error, '');
  assert.equal(host.standIn.logins, 2);
});

test('the example logs out and in again', async () => {
  const host = standIn('wx', { code: 'dev:example-leaver' });
  const { app, page } = await launch(host);
  const id = app.session.sessionId();
  await page.logout();
  assert.deepEqual(page.data, { openid: '', visits: 0, phone: '', error: '' });
  const check = await fetch(server.url + '/session', { headers: { 'X-Session': id } });
  assert.equal(check.status, 401);
  await page.login();
  assert.equal(page.data.openid, 'example-leaver');
  assert.equal(page.data.visits, 1);
});

test('request shape: the example phone button posts the code; errors show on the page', async () => {
  const host = standIn('wx', { code: 'dev:example-phone' });
  const { app, page } = await launch(host);
  await page.onGetPhoneNumber({ detail: { errMsg: 'getPhoneNumber:fail user deny' } });
  assert.equal(page.data.error, 'The phone number was not shared.');
  assert.equal(host.standIn.count('/platform/phone'), 0);

  await page.onGetPhoneNumber({ detail: { errMsg: 'getPhoneNumber:ok', code: 'phone-code' } });
  const sent = host.standIn.log.find((r) => r.path === '/platform/phone');
  assert.deepEqual(JSON.parse(sent.body), { code: 'phone-code' });
  assert.equal(sent.header['X-Session'], app.session.sessionId());
  // This server has no /platform/phone yet: its 404 message reaches the page.
  assert.notEqual(page.data.error, '');
  assert.equal(page.data.phone, '');
});

test('the example shows a failed launch login instead of throwing', async () => {
  const host = standIn('wx', { loginFails: 'system error' });
  const { page } = await launch(host);
  assert.match(page.data.error, /login:fail system error/);
});

test('every handler named in index.wxml is a page method', () => {
  const wxml = fs.readFileSync(path.join(EXAMPLE, 'pages', 'index', 'index.wxml'), 'utf8');
  const handlers = [...wxml.matchAll(/bind\w+="(\w+)"/g)].map((m) => m[1]);
  assert.ok(handlers.length >= 4);
  let pageOptions;
  global.Page = (options) => { pageOptions = options; };
  const file = path.join(EXAMPLE, 'pages', 'index', 'index.js');
  delete require.cache[file];
  require(file);
  for (const name of handlers) assert.equal(typeof pageOptions[name], 'function', name);
  const appJson = JSON.parse(fs.readFileSync(path.join(EXAMPLE, 'app.json'), 'utf8'));
  for (const pagePath of appJson.pages) assert.ok(fs.existsSync(path.join(EXAMPLE, pagePath + '.js')));
});
