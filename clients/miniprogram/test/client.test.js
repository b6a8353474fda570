'use strict';
// The library against a real minisession server, under each host's stand-in.

const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { test, before, after } = require('node:test');

const { createClient, MinisessionError } = require('../src/index.js');
const { standIn } = require('../support/hosts.js');
const { startServer, closedPort, silentServer } = require('../support/server.js');

let server;
before(async () => { server = await startServer(); });
after(async () => { await server.stop(); });

let users = 0;
function newUser() { users += 1; return 'dev:user' + users; }

function client(host, extra) {
  return createClient(Object.assign({ baseURL: server.url, host }, extra));
}

// What the server says about an id, asked directly (not through the library).
async function serverSees(id) {
  const res = await fetch(server.url + '/session', { headers: { 'X-Session': id } });
  return { status: res.status, body: await res.json() };
}

const HOSTS = [
  ['wx, names as sent, a gateway cookie joined with ", "', 'wx',
    { headerCase: 'keep', cookies: 'joined', gatewayCookie: 'SERVERID=lb1; Path=/' }],
  ['qq, lower-cased names, cookies joined with ";"', 'qq',
    { headerCase: 'lower', cookies: 'semicolon', gatewayCookie: 'SERVERID=lb1; Path=/' }],
  ['tt, Set-Cookie as an array (iOS)', 'tt',
    { headerCase: 'keep', cookies: 'array', gatewayCookie: 'SERVERID=lb1; Path=/' }],
  ['swan, lower-cased names', 'swan', { headerCase: 'lower' }],
  ['ks, names as sent', 'ks', { headerCase: 'keep' }],
  ['uni-app, passed as host', 'uni', { headerCase: 'lower', cookies: 'array' }],
  ['Taro, passed as host', 'Taro', { headerCase: 'keep' }],
  ['my (Alipay): headers/status, getAuthCode, 4xx in fail', 'my', { headerCase: 'lower' }],
];

for (const [name, kind, options] of HOSTS) {
  test(`login and session data on ${name}`, async () => {
    const openid = newUser();
    const host = standIn(kind, Object.assign({ code: openid }, options));
    const ms = client(host, { storageKey: 'sid' });
    const answer = await ms.login();

    assert.equal(answer.openid, openid.slice(4));
    assert.equal(ms.sessionId(), answer.session_id, 'the id comes from the JSON body');
    const saved = kind === 'my' ? host.getStorageSync({ key: 'sid' }).data : host.getStorageSync('sid');
    assert.equal(saved, answer.session_id, 'the id is kept in storage');
    assert.equal((await serverSees(answer.session_id)).body.openid, openid.slice(4));

    assert.deepEqual(await ms.data.replace({ cart: [1, 2], step: 'pay' }), { cart: [1, 2], step: 'pay' });
    assert.deepEqual(await ms.data.merge({ step: null, n: 2 }), { cart: [1, 2], n: 2 });
    assert.deepEqual(await ms.data.get(), { cart: [1, 2], n: 2 });
    assert.equal((await ms.session()).openid, openid.slice(4));

    const log = host.standIn.log;
    const loginCall = log.find((r) => r.path === '/login');
    assert.equal(loginCall.method, 'POST');
    assert.deepEqual(JSON.parse(loginCall.body), { code: openid });
    const dataCalls = log.filter((r) => r.path === '/session/data');
    assert.deepEqual(dataCalls.map((r) => r.method), ['PUT', 'POST', 'GET'], 'merge is a POST, never PATCH');
    for (const call of dataCalls) assert.equal(call.header['X-Session'], answer.session_id);
    assert.equal(host.standIn.logins, 1);
  });
}

test('the host is found among the globals (wx, and my before wx)', async () => {
  try {
    global.wx = standIn('wx', { code: newUser() });
    const ms = createClient({ baseURL: server.url });
    await ms.data.get();
    assert.equal(global.wx.standIn.logins, 1);
    global.my = standIn('my', { code: newUser() });
    await createClient({ baseURL: server.url }).data.get();
    assert.equal(global.my.standIn.logins, 1, 'Alipay, which may also define wx, is used first');
  } finally {
    delete global.wx;
    delete global.my;
  }
  assert.throws(() => createClient({ baseURL: server.url }), { code: 'no_host' });
});

test('5 parallel 401s cost 1 platform login and 1 /login, and every request is retried once', async (t) => {
  const N = 5;
  const host = standIn('wx', { code: newUser() });
  const ms = client(host);
  await ms.data.replace({ kept: 'no' });
  const before = { logins: host.standIn.logins, posts: host.standIn.count('/login') };
  // The server drops the session (as after a revocation or a purge).
  assert.equal((await fetch(server.url + '/session', {
    method: 'DELETE', headers: { 'X-Session': ms.sessionId() } })).status, 204);

  const results = await Promise.all(Array.from({ length: N }, () => ms.data.get()));

  const logins = host.standIn.logins - before.logins;
  const posts = host.standIn.count('/login') - before.posts;
  t.diagnostic(`${N} parallel 401s: ${logins} platform login(s), ${posts} POST /login`);
  assert.equal(logins, 1);
  assert.equal(posts, 1);
  assert.deepEqual(results, Array(N).fill({}), 'each request answered from the new session');
  assert.equal(host.standIn.count('/session/data'), 1 + 2 * N, 'each request sent at most twice');
});

test('5 parallel requests before any login cost 1 platform login and 1 /login', async () => {
  const host = standIn('wx', { code: newUser() });
  const ms = client(host);
  await Promise.all(Array.from({ length: 5 }, () => ms.data.get()));
  assert.equal(host.standIn.logins, 1);
  assert.equal(host.standIn.count('/login'), 1);
});

test('a second 401 after the new login rejects, after one retry', async () => {
  const host = standIn('wx', { code: newUser() });
  // A proxy that mangles the session header: the server refuses every id it gets.
  const send = host.request;
  host.request = (o) => send(Object.assign({}, o, {
    header: o.header['X-Session'] ? Object.assign({}, o.header, { 'X-Session': 'forged' }) : o.header,
  }));
  const ms = client(host);
  await assert.rejects(ms.data.get(), (err) => {
    assert.ok(err instanceof MinisessionError);
    assert.ok(err instanceof Error);
    assert.equal(err.code, 'invalid_session');
    assert.equal(err.status, 401);
    return true;
  });
  assert.equal(host.standIn.count('/session/data'), 2);
  assert.equal(host.standIn.logins, 2, 'the first login and one re-login, no more');
});

test('merges from two concurrent clients of one user lose nothing', async () => {
  const openid = newUser();
  const phone = client(standIn('wx', { code: openid }));
  const tablet = client(standIn('wx', { code: openid, headerCase: 'lower' }));
  const N = 20;
  const merges = [];
  for (let i = 0; i < N; i += 1) {
    merges.push(phone.data.merge({ ['phone' + i]: i }), tablet.data.merge({ ['tablet' + i]: i }));
  }
  await Promise.all(merges);
  const expected = {};
  for (let i = 0; i < N; i += 1) { expected['phone' + i] = i; expected['tablet' + i] = i; }
  assert.deepEqual(await phone.data.get(), expected);
  assert.deepEqual(await tablet.data.get(), expected);
});

test('logout ends the session on the server and forgets it', async () => {
  const host = standIn('wx', { code: newUser() });
  const ms = client(host);
  await ms.data.replace({ a: 1 });
  const id = ms.sessionId();

  await ms.logout();

  const del = host.standIn.log.find((r) => r.method === 'DELETE');
  assert.equal(del.path, '/session');
  assert.equal(del.header['X-Session'], id);
  assert.equal(ms.sessionId(), null);
  assert.equal(host.getStorageSync('minisession'), '');
  assert.equal((await serverSees(id)).status, 401);
  assert.equal(await ms.session(), null);
  await ms.logout(); // nothing to end: no request, no error
  assert.equal(host.standIn.log.filter((r) => r.method === 'DELETE').length, 1);
  assert.deepEqual(await ms.data.get(), {}, 'the next call logs in to a new session');
  assert.notEqual(ms.sessionId(), id);
});

test('session() reports an ended session as null without logging in', async () => {
  const host = standIn('wx', { code: newUser() });
  const ms = client(host);
  assert.equal(await ms.session(), null);
  await ms.login();
  await fetch(server.url + '/session', { method: 'DELETE', headers: { 'X-Session': ms.sessionId() } });
  assert.equal(await ms.session(), null);
  assert.equal(host.standIn.logins, 1);
});

for (const mode of ['full', 'unavailable']) {
  test(`storage ${mode}: the session lives in memory, nothing throws into the app`, async () => {
    const host = standIn('wx', { code: newUser(), storage: mode });
    const ms = client(host);
    await ms.data.replace({ a: 1 });
    await ms.data.merge({ b: 2 });
    assert.deepEqual(await ms.data.get(), { a: 1, b: 2 });
    assert.equal(host.standIn.logins, 1, 'one login, kept in memory');
    assert.equal(host.standIn.stored.size, 0);
    await ms.logout();
    assert.equal(ms.sessionId(), null);
  });
}

test('a stored id is used without a new login (app restart)', async () => {
  const openid = newUser();
  const host = standIn('wx', { code: openid });
  await client(host).data.replace({ a: 1 });
  const restarted = client(host);
  assert.deepEqual(await restarted.data.get(), { a: 1 });
  assert.equal(host.standIn.logins, 1);
});

test('network failure rejects with network_error', async () => {
  const host = standIn('wx', { code: newUser() });
  const ms = createClient({ baseURL: `http://127.0.0.1:${await closedPort()}`, host });
  await assert.rejects(ms.data.get(), (err) => {
    assert.equal(err.code, 'network_error');
    assert.match(err.message, /request: request:fail ECONNREFUSED/);
    return true;
  });
  assert.equal(host.standIn.logins, 1);
});

test('a server that never answers rejects with timeout after the timeout', async () => {
  const silent = await silentServer();
  try {
    const host = standIn('wx', { code: newUser() });
    const ms = createClient({ baseURL: silent.url, host, timeout: 300 });
    const started = Date.now();
    await assert.rejects(ms.data.get(), { code: 'timeout' });
    assert.ok(Date.now() - started < 2000, 'rejected soon after the 300 ms timeout');
  } finally {
    await silent.close();
  }
});

test('a host that never calls back still rejects with timeout, and the task is aborted', async () => {
  const host = standIn('wx', { code: newUser(), silent: true });
  const ms = client(host, { timeout: 100 });
  const started = Date.now();
  await assert.rejects(ms.login(), (err) => {
    assert.equal(err.code, 'timeout');
    assert.match(err.message, /no answer within 100 ms/);
    return true;
  });
  assert.ok(Date.now() - started < 4000);
  assert.equal(host.standIn.aborted, 1);
});

test('a failing platform login rejects with platform_login_failed, and /login is not called', async () => {
  const host = standIn('wx', { loginFails: 'system error' });
  await assert.rejects(client(host).data.get(), (err) => {
    assert.equal(err.code, 'platform_login_failed');
    assert.match(err.message, /login:fail system error/);
    return true;
  });
  assert.equal(host.standIn.count('/login'), 0);
});

test('a login the server refuses rejects with its error code', async () => {
  const host = standIn('wx', { code: 'not-a-dev-code' });
  await assert.rejects(client(host).login(), { code: 'code_invalid', status: 400 });
});

test('PATCH is refused before sending, as the hosts refuse it on devices', async () => {
  const host = standIn('wx', { code: newUser() });
  const raw = await new Promise((resolve) => host.request({ url: server.url + '/session/data',
    method: 'PATCH', data: {}, success: resolve, fail: resolve }));
  assert.equal(raw.errMsg, 'request:fail method invalid');
  await assert.rejects(client(host).request({ url: '/session/data', method: 'PATCH', data: {} }),
    { code: 'method_invalid' });
  assert.equal(host.standIn.log.length, 0);
});

test('the session is never sent to another origin', async () => {
  const host = standIn('wx', { code: newUser() });
  const ms = client(host);
  await assert.rejects(ms.request({ url: 'http://127.0.0.1:1/steal' }), { code: 'foreign_url' });
  await assert.rejects(ms.request({ url: server.url + '.evil.example/x' }), { code: 'foreign_url' });
  assert.equal(host.standIn.log.length, 0);
  const res = await ms.request({ url: server.url + '/session/data' });
  assert.equal(res.status, 200);
});

test('request() resolves non-401 errors with their status and body', async () => {
  const ms = client(standIn('wx', { code: newUser() }));
  const res = await ms.request({ url: '/session/data', method: 'PUT', data: '[1]' });
  assert.equal(res.status, 400);
  assert.equal(res.data.error, 'invalid_json');
  await assert.rejects(ms.data.replace([1]), { code: 'invalid_json', status: 400 });
});

test('downloadFile carries the session and logs in again once on 401', async () => {
  const host = standIn('wx', { code: newUser() });
  const ms = client(host);
  await ms.data.replace({ file: 'mine' });
  const first = await ms.downloadFile({ url: '/session/data' });
  assert.equal(first.status, 200);
  assert.deepEqual(JSON.parse(fs.readFileSync(first.tempFilePath, 'utf8')), { file: 'mine' });

  await fetch(server.url + '/session', { method: 'DELETE', headers: { 'X-Session': ms.sessionId() } });
  const second = await ms.downloadFile({ url: '/session/data' });
  assert.equal(second.status, 200);
  assert.deepEqual(JSON.parse(fs.readFileSync(second.tempFilePath, 'utf8')), {}, 'the new session');
  assert.equal(host.standIn.logins, 2);
});

test('request shape: uploadFile sends the file with the session header', async () => {
  const host = standIn('wx', { code: newUser() });
  const ms = client(host);
  await ms.login();
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'upload-')), 'avatar.png');
  fs.writeFileSync(file, 'PNG-BYTES');
  // The server has no upload route: what matters is what was sent, and that the answer surfaces.
  const res = await ms.uploadFile({ url: '/session/data', filePath: file, name: 'avatar', formData: { k: 'v' } });
  const sent = host.standIn.log.find((r) => r.path === '/session/data');
  assert.equal(sent.method, 'POST');
  assert.equal(sent.header['X-Session'], ms.sessionId());
  assert.match(sent.header['Content-Type'], /^multipart\/form-data; boundary=/);
  assert.match(sent.body.toString(), /name="avatar"; filename="avatar.png"\r\n\r\nPNG-BYTES/);
  assert.equal(res.status, 400);
  assert.equal(res.data.error, 'invalid_json');
});

test('request shape: phone(code) and decrypt() POST JSON with the session header', async () => {
  const host = standIn('wx', { code: newUser() });
  const ms = client(host);
  await ms.login();
  // A dev app has no phone numbers (phone.test.js has a WeChat one): the 409 must surface as
  // an error; so must /platform/decrypt's 400 for data that is not base64.
  await assert.rejects(ms.phone('phone-code-1'), { code: 'not_supported', status: 409 });
  await assert.rejects(ms.decrypt({ encryptedData: 'ENC', iv: 'IV', extra: 'dropped' }),
    { code: 'invalid_encrypted_data', status: 400 });
  const [phone, decrypt] = ['/platform/phone', '/platform/decrypt']
    .map((p) => host.standIn.log.find((r) => r.path === p));
  assert.equal(phone.method, 'POST');
  assert.deepEqual(JSON.parse(phone.body), { code: 'phone-code-1' });
  assert.equal(phone.header['X-Session'], ms.sessionId());
  assert.equal(decrypt.method, 'POST');
  assert.deepEqual(JSON.parse(decrypt.body), { encryptedData: 'ENC', iv: 'IV' });
  assert.equal(decrypt.header['X-Session'], ms.sessionId());
});

test('request shape: the app option logs in at /login/{app}, and a custom header name is used', async () => {
  const host = standIn('wx', { code: newUser() });
  const ms = client(host, { app: 'shop/ä', header: 'X-Shop-Session' });
  // This one-app server serves no app of that name (apps.test.js logs in to real apps).
  await assert.rejects(ms.login(), { status: 404 });
  assert.equal(host.standIn.log[0].method, 'POST');
  assert.equal(host.standIn.log[0].path, '/login/shop%2F%C3%A4');
  // A header name the server does not read: sent as asked, refused, retried once, rejected.
  const plain = standIn('wx', { code: newUser() });
  const ms2 = client(plain, { header: 'X-Shop-Session' });
  await assert.rejects(ms2.request({ url: '/session/data' }), { code: 'no_session', status: 401 });
  assert.deepEqual(plain.standIn.log.map((r) => r.path), ['/login', '/session/data', '/login', '/session/data']);
  assert.equal(plain.standIn.log[3].header['X-Shop-Session'], ms2.sessionId());
});

test('createClient without baseURL is a clear error', () => {
  assert.throws(() => createClient({ host: standIn('wx') }), { code: 'bad_options' });
});
