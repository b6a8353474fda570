'use strict';
// What is shipped: size, syntax the oldest base libraries run, and the package entry points.

const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const zlib = require('node:zlib');
const { test } = require('node:test');
const acorn = require('acorn');
const { minify } = require('terser');

const PACKAGE = path.resolve(__dirname, '..');
const pkg = JSON.parse(fs.readFileSync(path.join(PACKAGE, 'package.json'), 'utf8'));
const SHIPPED = ['src/index.js'];
const LIMIT = 8 * 1024;

test('the library is under 8 kB minified', async (t) => {
  const source = SHIPPED.map((f) => fs.readFileSync(path.join(PACKAGE, f), 'utf8')).join('\n');
  const { code } = await minify(source, { ecma: 5, compress: true, mangle: true });
  const gzipped = zlib.gzipSync(code, { level: 9 }).length;
  t.diagnostic(`minified size: ${code.length} bytes (gzip ${gzipped} bytes), limit ${LIMIT}`);
  assert.ok(code.length < LIMIT, `${code.length} bytes minified`);
});

test('the shipped CommonJS code is ES5 syntax (no arrow functions, classes, let/const, async)', () => {
  for (const file of SHIPPED) {
    assert.doesNotThrow(() => acorn.parse(fs.readFileSync(path.join(PACKAGE, file), 'utf8'),
      { ecmaVersion: 5, sourceType: 'script' }), file);
  }
  // The checker itself refuses newer syntax.
  assert.throws(() => acorn.parse('var f = () => 1;', { ecmaVersion: 5 }));
});

test('package.json is ready to publish: name, version, files, exports for require and import, types', async () => {
  assert.equal(pkg.name, 'minisession-miniprogram');
  assert.match(pkg.version, /^\d+\.\d+\.\d+$/);
  assert.deepEqual(Object.keys(pkg.dependencies || {}), [], 'no runtime dependencies');
  const entry = pkg.exports['.'];
  for (const file of [pkg.main, pkg.types, entry.require, entry.import, entry.types]) {
    assert.ok(fs.existsSync(path.join(PACKAGE, file)), file);
    assert.ok(pkg.files.some((f) => path.normalize(file).startsWith(path.normalize(f))), `${file} in files`);
  }
  const cjs = require(PACKAGE);
  const esm = await import(path.join(PACKAGE, entry.import));
  assert.equal(typeof cjs.createClient, 'function');
  assert.equal(esm.createClient, cjs.createClient);
  assert.equal(esm.default, cjs);
  const types = fs.readFileSync(path.join(PACKAGE, pkg.types), 'utf8');
  for (const name of Object.keys(cjs)) assert.match(types, new RegExp(`export declare (function|const|class) ${name}\\b`));
});
