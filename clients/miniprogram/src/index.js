/* minisession mini-program client. ES5 syntax on purpose: it runs unchanged on the oldest base
 * libraries (it needs only a global Promise). No dependencies. */
'use strict';

var DEFAULT_TIMEOUT = 10000;
// Margin after the host's own timeout before we give up on a host that never calls back.
var GUARD_MARGIN = 2000;

function MinisessionError(code, message, status, data) {
  this.name = 'MinisessionError';
  this.code = code;
  this.message = message;
  this.status = status || 0;
  this.data = data;
  this.stack = new Error(message).stack;
}
MinisessionError.prototype = Object.create(Error.prototype);
MinisessionError.prototype.constructor = MinisessionError;

function failure(res, what) {
  var text = (res && (res.errMsg || res.errorMessage || res.message)) || 'failed';
  var code = /timeout|time out/i.test(text) || (res && res.error === 'timeout')
    ? 'timeout' : 'network_error';
  return new MinisessionError(code, what + ': ' + text);
}

function assign(target, source) {
  for (var key in source) {
    if (Object.prototype.hasOwnProperty.call(source, key)) target[key] = source[key];
  }
  return target;
}

// Adapters turn a host's API into {request, login, upload, download, get, set, remove}.
// `request` calls back (error, {status, header, data}) whatever the status.

// wx and every host that mirrors it: qq, tt, swan, ks, uni, Taro.
function wxLike(api) {
  function call(method, options, done) {
    return api[method](assign(options, {
      success: function (res) { done(null, res); },
      fail: function (res) { done(failure(res, method)); }
    }));
  }
  return {
    request: function (o, done) {
      return call('request', o, function (err, res) {
        done(err, res && { status: res.statusCode, header: res.header || {}, data: res.data });
      });
    },
    login: function (done) {
      call('login', {}, function (err, res) {
        done(err, res && res.code);
      });
    },
    upload: function (o, done) {
      return call('uploadFile', o, function (err, res) {
        done(err, res && { status: res.statusCode, data: res.data });
      });
    },
    download: function (o, done) {
      return call('downloadFile', o, function (err, res) {
        done(err, res && { status: res.statusCode, tempFilePath: res.tempFilePath });
      });
    },
    get: function (key) { return api.getStorageSync(key); },
    set: function (key, value) { api.setStorageSync(key, value); },
    remove: function (key) { api.removeStorageSync(key); }
  };
}

// Alipay: `headers`/`status` instead of `header`/`statusCode`, getAuthCode instead of login,
// storage calls take {key, data}, and an HTTP status >= 400 arrives in `fail` (error 19).
function alipay(api) {
  function response(res) {
    return { status: res.status, header: res.headers || res.header || {}, data: res.data };
  }
  return {
    request: function (o, done) {
      return api.request({
        url: o.url, method: o.method, headers: o.header, data: o.data,
        dataType: 'json', timeout: o.timeout,
        success: function (res) { done(null, response(res)); },
        fail: function (res) {
          if (res && res.status) done(null, response(res));
          else done(failure(res, 'request'));
        }
      });
    },
    login: function (done) {
      api.getAuthCode({
        scopes: 'auth_base',
        success: function (res) { done(null, res.authCode); },
        fail: function (res) { done(failure(res, 'getAuthCode')); }
      });
    },
    upload: function (o, done) {
      return api.uploadFile(assign(assign({ fileType: 'image', fileName: o.name }, o), {
        success: function (res) { done(null, { status: res.statusCode, data: res.data }); },
        fail: function (res) { done(failure(res, 'uploadFile')); }
      }));
    },
    download: function (o, done) {
      return api.downloadFile(assign(o, {
        success: function (res) {
          done(null, { status: res.statusCode || 200, tempFilePath: res.apFilePath || res.tempFilePath });
        },
        fail: function (res) { done(failure(res, 'downloadFile')); }
      }));
    },
    get: function (key) {
      var res = api.getStorageSync({ key: key });
      return res && res.data;
    },
    set: function (key, value) { api.setStorageSync({ key: key, data: value }); },
    remove: function (key) { api.removeStorageSync({ key: key }); }
  };
}

function detectHost() {
  /* global wx, qq, tt, swan, ks, my */
  if (typeof my !== 'undefined' && my.getAuthCode) return alipay(my);
  if (typeof wx !== 'undefined' && wx.request) return wxLike(wx);
  if (typeof qq !== 'undefined' && qq.request) return wxLike(qq);
  if (typeof tt !== 'undefined' && tt.request) return wxLike(tt);
  if (typeof swan !== 'undefined' && swan.request) return wxLike(swan);
  if (typeof ks !== 'undefined' && ks.request) return wxLike(ks);
  throw new MinisessionError('no_host', 'no mini-program host found: pass createClient({host: ...})');
}

function resolveHost(host) {
  if (!host) return detectHost();
  if (host.request && host.login && host.get) return host; // already an adapter
  return host.getAuthCode ? alipay(host) : wxLike(host);
}

// The session id lives in memory; storage is a copy that may fail (full, unavailable) without
// the app noticing: the session then lasts as long as the process.
function sessionStore(host, key) {
  var loaded = false;
  var id = null;
  return {
    read: function () {
      if (!loaded) {
        loaded = true;
        try { id = host.get(key) || null; } catch (e) { id = null; }
      }
      return id;
    },
    write: function (value) {
      loaded = true;
      id = value;
      try {
        if (value) host.set(key, value); else host.remove(key);
      } catch (e) { /* memory only */ }
    }
  };
}

function jsonBody(data) {
  if (typeof data !== 'string') return data;
  try { return JSON.parse(data); } catch (e) { return data; }
}

function createClient(options) {
  options = options || {};
  if (!options.baseURL) throw new MinisessionError('bad_options', 'createClient needs baseURL');
  var baseURL = options.baseURL.replace(/\/+$/, '');
  var headerName = options.header || 'X-Session';
  var timeout = options.timeout || DEFAULT_TIMEOUT;
  var loginPath = options.app ? '/login/' + encodeURIComponent(options.app) : '/login';
  var host = resolveHost(options.host);
  var store = sessionStore(host, options.storageKey || 'minisession');
  var pendingLogin = null;

  // The session goes only to our own server, never to another origin.
  function urlFor(path) {
    if (!/^https?:\/\//i.test(path)) return baseURL + (path.charAt(0) === '/' ? '' : '/') + path;
    if (path.indexOf(baseURL + '/') === 0) return path;
    throw new MinisessionError('foreign_url', 'the session is sent only to ' + baseURL);
  }

  // One host call as a promise, bounded even when the host never calls back.
  function hostCall(method, o) {
    var limit = o.timeout || timeout;
    return new Promise(function (resolve, reject) {
      var settled = false;
      var task;
      var guard = setTimeout(function () {
        finish(new MinisessionError('timeout', method + ': no answer within ' + limit + ' ms'));
        if (task && task.abort) task.abort();
      }, limit + GUARD_MARGIN);
      function finish(err, res) {
        if (settled) return;
        settled = true;
        clearTimeout(guard);
        if (err) reject(err); else resolve(res);
      }
      task = host[method](assign({ timeout: limit }, o), finish);
    });
  }

  function headers(extra, id) {
    var header = assign({}, extra || {});
    if (id) header[headerName] = id;
    return header;
  }

  function login() {
    if (pendingLogin) return pendingLogin;
    pendingLogin = new Promise(function (resolve, reject) {
      host.login(function (err, code) {
        if (err) reject(new MinisessionError('platform_login_failed', err.message));
        else resolve(code);
      });
    }).then(function (code) {
      return hostCall('request', {
        url: baseURL + loginPath, method: 'POST', data: { code: code },
        header: { 'Content-Type': 'application/json' }
      });
    }).then(function (res) {
      var body = jsonBody(res.data) || {};
      var id = body.session_id || body.sessionid;
      if (res.status !== 200 || typeof id !== 'string') throw httpError(res, 'login failed');
      store.write(id);
      return body;
    });
    function done() { pendingLogin = null; }
    pendingLogin.then(done, done);
    return pendingLogin;
  }

  // Log in again after `staleId` got a 401; every caller that saw the same stale id shares
  // one login, and a caller that sees the id already replaced just retries.
  function renew(staleId) {
    var current = store.read();
    if (current && current !== staleId) return Promise.resolve(current);
    return login().then(function () { return store.read(); });
  }

  function currentSession() {
    var id = store.read();
    return id ? Promise.resolve(id) : login().then(function () { return store.read(); });
  }

  // send(id) → promise of {status, ...}; at most one re-login and one retry.
  function withSession(send) {
    return currentSession().then(function (id) {
      return send(id).then(function (res) {
        if (res.status !== 401) return res;
        return renew(id).then(send).then(function (again) {
          if (again.status === 401) throw httpError(again, 'session refused after a new login');
          return again;
        });
      });
    });
  }

  function request(o) {
    var method = (o.method || 'GET').toUpperCase();
    if (method === 'PATCH') {
      return Promise.reject(new MinisessionError('method_invalid',
        'mini-program hosts cannot send PATCH; merge with POST'));
    }
    var url;
    try { url = urlFor(o.url); } catch (e) { return Promise.reject(e); }
    return withSession(function (id) {
      return hostCall('request', assign(assign({}, o), {
        url: url, method: method, header: headers(o.header, id)
      }));
    });
  }

  function httpError(res, what) {
    var body = jsonBody(res.data) || {};
    return new MinisessionError(body.error || 'http_' + res.status,
      body.message || what + ' (HTTP ' + res.status + ')', res.status, body);
  }

  // The JSON answer of a call that must succeed, or its error.
  function call(method, path, data) {
    return request({ url: path, method: method, data: data }).then(function (res) {
      if (res.status < 200 || res.status > 299) throw httpError(res, method + ' ' + path);
      return jsonBody(res.data);
    });
  }

  return {
    login: login,
    request: request,
    sessionId: function () { return store.read(); },
    // The server's view of the session, or null when there is none (no login is attempted).
    session: function () {
      var id = store.read();
      if (!id) return Promise.resolve(null);
      return hostCall('request', { url: urlFor('/session'), method: 'GET', header: headers({}, id) })
        .then(function (res) {
          if (res.status === 401) {
            if (store.read() === id) store.write(null); // unless a login replaced it meanwhile
            return null;
          }
          if (res.status !== 200) throw httpError(res, 'GET /session');
          return jsonBody(res.data);
        });
    },
    logout: function () {
      var id = store.read();
      if (!id) return Promise.resolve();
      store.write(null);
      return hostCall('request', { url: urlFor('/session'), method: 'DELETE', header: headers({}, id) })
        .then(function (res) {
          if (res.status !== 204 && res.status !== 401) throw httpError(res, 'DELETE /session');
        });
    },
    data: {
      get: function () { return call('GET', '/session/data'); },
      merge: function (data) { return call('POST', '/session/data', data); },
      replace: function (data) { return call('PUT', '/session/data', data); }
    },
    phone: function (code) { return call('POST', '/platform/phone', { code: code }); },
    decrypt: function (payload) {
      return call('POST', '/platform/decrypt', { encryptedData: payload.encryptedData, iv: payload.iv });
    },
    uploadFile: function (o) {
      var url;
      try { url = urlFor(o.url); } catch (e) { return Promise.reject(e); }
      return withSession(function (id) {
        return hostCall('upload', assign(assign({}, o), { url: url, header: headers(o.header, id) }));
      }).then(function (res) { return { status: res.status, data: jsonBody(res.data) }; });
    },
    downloadFile: function (o) {
      var url;
      try { url = urlFor(o.url); } catch (e) { return Promise.reject(e); }
      return withSession(function (id) {
        return hostCall('download', assign(assign({}, o), { url: url, header: headers(o.header, id) }));
      });
    }
  };
}

module.exports = {
  createClient: createClient,
  MinisessionError: MinisessionError,
  adapters: { wxLike: wxLike, alipay: alipay }
};
