'use strict';
// Host stand-ins: the request/login/storage/file APIs of mini-program hosts, made over real
// HTTP with the behaviour each host documents or shows on devices:
// - wx, qq, tt, swan, ks, uni, Taro: {statusCode, header, data}; header names keep the server's
//   case on some hosts and are lower-cased on others; several Set-Cookie headers arrive joined
//   by ", " (";" on some Android QQ builds) or, on some iOS versions, as an array; PATCH fails
//   with "method invalid"; a timeout fails with "request:fail timeout".
// - my (Alipay): `headers` in, {data, status, headers} out, an HTTP status >= 400 goes to
//   `fail` as error 19; getAuthCode instead of login; storage calls take {key, data}.
// Every stand-in records what it sent and the answer's status and body (`log`) and counts its platform logins (`logins`).

const fs = require('node:fs');
const http = require('node:http');
const os = require('node:os');
const path = require('node:path');

const HOST_METHODS = ['OPTIONS', 'GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'TRACE', 'CONNECT'];

function later(fn, arg) {
  setImmediate(() => fn && fn(arg));
}

// options: code (string, or function returning one), headerCase ('keep' | 'lower'),
// cookies ('joined' | 'semicolon' | 'array'), gatewayCookie (a Set-Cookie a proxy adds in front
// of the server's), storage ('ok' | 'full' | 'unavailable'), silent (never calls back),
// loginFails (errMsg of a failing platform login).
function standIn(kind, options = {}) {
  const alipay = kind === 'my';
  const log = [];
  const stored = new Map();
  const state = { logins: 0, log, stored };

  function headersOf(res) {
    const header = {};
    const cookies = [];
    if (options.gatewayCookie) cookies.push(options.gatewayCookie);
    for (let i = 0; i < res.rawHeaders.length; i += 2) {
      const name = options.headerCase === 'lower' ? res.rawHeaders[i].toLowerCase() : res.rawHeaders[i];
      const value = res.rawHeaders[i + 1];
      if (name.toLowerCase() === 'set-cookie') cookies.push(value);
      else header[name] = value;
    }
    if (cookies.length) {
      const name = options.headerCase === 'lower' ? 'set-cookie' : 'Set-Cookie';
      header[name] = options.cookies === 'array' ? cookies
        : cookies.join(options.cookies === 'semicolon' ? ';' : ', ');
    }
    return { header, cookies };
  }

  // One HTTP exchange; done(error, {status, header, cookies, body}).
  function exchange(o, body, contentType, done) {
    const url = new URL(o.url);
    const header = Object.assign({}, o.header || {});
    if (contentType && !Object.keys(header).some((k) => k.toLowerCase() === 'content-type')) {
      header['Content-Type'] = contentType;
    }
    const entry = { method: o.method, path: url.pathname, url: o.url, header, body };
    log.push(entry);
    const req = http.request(url, { method: o.method, headers: header }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        entry.status = res.statusCode;
        entry.answer = Buffer.concat(chunks).toString('utf8');
        const { header: h, cookies } = headersOf(res);
        done(null, { status: res.statusCode, header: h, cookies, body: Buffer.concat(chunks) });
      });
    });
    req.setTimeout(o.timeout || 60000, () => req.destroy(new Error('timeout')));
    req.on('error', (err) => done(err.message === 'timeout' ? 'timeout' : err.code || err.message));
    if (body != null) req.write(body);
    req.end();
    return { abort: () => req.destroy(new Error('abort')) };
  }

  function parse(buffer, dataType) {
    const text = buffer.toString('utf8');
    if (dataType === 'text') return text;
    try { return JSON.parse(text); } catch (e) { return text; }
  }

  function request(o) {
    const method = (o.method || 'GET').toUpperCase();
    if (!HOST_METHODS.includes(method)) {
      later(o.fail, alipay ? { error: 2, errorMessage: 'method invalid' }
        : { errMsg: 'request:fail method invalid' });
      return { abort() {} };
    }
    let url = o.url;
    let body = null;
    if (o.data != null && (method === 'GET' || method === 'HEAD')) {
      url += (url.includes('?') ? '&' : '?') + new URLSearchParams(o.data).toString();
    } else if (o.data != null) {
      body = typeof o.data === 'string' ? o.data : JSON.stringify(o.data);
    }
    const sent = { url, method, header: alipay ? o.headers : o.header, timeout: o.timeout };
    if (options.silent) {
      log.push({ method, path: new URL(url).pathname, url, header: sent.header, body });
      return { abort() { state.aborted = (state.aborted || 0) + 1; } };
    }
    return exchange(sent, body, 'application/json', (err, res) => {
      if (err) {
        const text = err === 'timeout' ? 'timeout' : 'fail ' + err;
        return o.fail && o.fail(alipay ? { error: err === 'timeout' ? 13 : 12, errorMessage: text }
          : { errMsg: 'request:' + (err === 'timeout' ? 'fail timeout' : text) });
      }
      const data = parse(res.body, o.dataType);
      if (alipay) {
        const answer = { data, status: res.status, headers: res.header };
        return res.status >= 400
          ? o.fail && o.fail(Object.assign({ error: 19, errorMessage: 'http status error' }, answer))
          : o.success && o.success(answer);
      }
      o.success && o.success({ data, statusCode: res.status, header: res.header, cookies: res.cookies,
        errMsg: 'request:ok' });
    });
  }

  function login(o) {
    state.logins += 1;
    if (options.loginFails) {
      return later(o.fail, alipay ? { error: 11, errorMessage: options.loginFails }
        : { errMsg: 'login:fail ' + options.loginFails });
    }
    const code = typeof options.code === 'function' ? options.code() : options.code || 'dev:alice';
    later(o.success, alipay ? { authCode: code } : { code, errMsg: 'login:ok' });
  }

  function uploadFile(o) {
    const boundary = '----standin' + Date.now();
    const file = fs.readFileSync(o.filePath);
    const parts = [];
    for (const [k, v] of Object.entries(o.formData || {})) {
      parts.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${k}"\r\n\r\n${v}\r\n`));
    }
    parts.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${o.name}"; ` +
      `filename="${path.basename(o.filePath)}"\r\n\r\n`), file, Buffer.from(`\r\n--${boundary}--\r\n`));
    return exchange({ url: o.url, method: 'POST', header: o.header, timeout: o.timeout },
      Buffer.concat(parts), `multipart/form-data; boundary=${boundary}`, (err, res) => {
        if (err) return o.fail && o.fail({ errMsg: 'uploadFile:fail ' + err });
        o.success && o.success({ data: res.body.toString('utf8'), statusCode: res.status });
      });
  }

  function downloadFile(o) {
    return exchange({ url: o.url, method: 'GET', header: o.header, timeout: o.timeout }, null, null,
      (err, res) => {
        if (err) return o.fail && o.fail({ errMsg: 'downloadFile:fail ' + err });
        const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'standin-')), 'download');
        fs.writeFileSync(file, res.body);
        o.success && o.success(alipay ? { apFilePath: file } : { tempFilePath: file, statusCode: res.status });
      });
  }

  function storageCheck(writing) {
    if (options.storage === 'unavailable' || (writing && options.storage === 'full')) {
      throw new Error((writing ? 'setStorageSync' : 'getStorageSync') +
        ':fail ' + (options.storage === 'full' ? 'exceed storage max size 10MB' : 'storage unavailable'));
    }
  }

  const api = alipay ? {
    getAuthCode: login,
    getStorageSync({ key }) { storageCheck(false); return { data: stored.has(key) ? stored.get(key) : null }; },
    setStorageSync({ key, data }) { storageCheck(true); stored.set(key, data); },
    removeStorageSync({ key }) { storageCheck(true); stored.delete(key); },
  } : {
    login,
    getStorageSync(key) { storageCheck(false); return stored.has(key) ? stored.get(key) : ''; },
    setStorageSync(key, data) { storageCheck(true); stored.set(key, data); },
    removeStorageSync(key) { storageCheck(true); stored.delete(key); },
  };
  Object.assign(api, { request, uploadFile, downloadFile });
  // Test-side counters, kept off the API the library sees.
  Object.defineProperty(api, 'standIn', { value: state });
  state.count = (p) => log.filter((r) => r.path === p).length;
  return api;
}

module.exports = { standIn };
