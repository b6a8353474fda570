'use strict';
// phone(code) end to end: a real `minisession serve` with a WeChat app whose api_base is a real
// `minisession fake-platforms`. The client logs in through the fake's code2Session, the fake's
// getPhoneNumber button gives a code (minted at /fake/phone), and the server turns it into the
// number with the app's access_token (stable_token, then getuserphonenumber).

const assert = require('node:assert/strict');
const { test, before, after } = require('node:test');

const { createClient } = require('../src/index.js');
const { standIn } = require('../support/hosts.js');
const { startServer, startFakePlatforms } = require('../support/server.js');

const APPID = 'wx-phone-test-appid';
const SECRET = 'phone-test-secret-0123456789';
let fakes;
let server;
before(async () => {
  fakes = await startFakePlatforms(APPID, SECRET);
  server = await startServer({}, { shop: { platform: 'wechat', appid: APPID, secret: SECRET, api_base: fakes.url } });
});
after(async () => {
  await server.stop();
  await fakes.stop();
});

async function phoneCode(openid, phoneNumber) {
  const res = await fetch(fakes.url + '/fake/phone', { method: 'POST', body: JSON.stringify({ openid, phoneNumber }) });
  assert.equal(res.status, 200);
  return (await res.json()).code;
}

test('phone(code) answers the number the platform verified; a code works once', async () => {
  let logins = 0;
  const host = standIn('wx', { code: () => `user:zoe:${++logins}` });
  const ms = createClient({ baseURL: server.url, host, app: 'shop' });
  const code = await phoneCode('zoe', '13800138000');

  // No session yet: the client logs in first, then sends the code.
  const phone = await ms.phone(code);
  assert.deepEqual(phone, { phoneNumber: '13800138000', purePhoneNumber: '13800138000', countryCode: '86' });
  assert.deepEqual(host.standIn.log.map((e) => `${e.method} ${e.path} ${e.status}`),
    ['POST /login/shop 200', 'POST /platform/phone 200']);

  // The same code again: spent at the platform, a clear 400 the app can act on.
  await assert.rejects(ms.phone(code), { status: 400, code: 'code_invalid' });
  // Another user's code: refused too (WeChat checks it belongs to this openid).
  await assert.rejects(ms.phone(await phoneCode('yan')), { status: 400, code: 'code_invalid' });

  const stats = await (await fetch(fakes.url + '/fake/stats')).json();
  assert.equal(stats.user_calls.getuserphonenumber, 3);
  assert.deepEqual(stats.stable_token_calls, { normal: 1, force: 0 });
  assert.ok(!server.log().includes('13800138000'), 'the number reached the server log');
});
