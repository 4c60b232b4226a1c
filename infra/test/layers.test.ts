import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { checkLayerZip, EXTENSION_ENTRY, layerZipPaths, listZipEntries } from '../lib';
import { repoRoot } from '../lib/app';
import { appFromContext, fixtureLayerDir, tmpDir, writeZip } from './helpers';

describe('layer zips', () => {
  it('listZipEntries reads names and Unix modes', () => {
    const dir = fixtureLayerDir();
    assert.deepEqual(listZipEntries(path.join(dir, 'layer-arm64.zip')), [
      { name: 'extensions/', unixMode: 0o040755 },
      { name: EXTENSION_ENTRY, unixMode: 0o100755 },
    ]);
  });

  it('accepts a zip that records no Unix mode', () => {
    const zip = writeZip(path.join(tmpDir(), 'l.zip'), [{ name: EXTENSION_ENTRY, data: 'x', mode: 0 }]);
    assert.deepEqual(listZipEntries(zip), [{ name: EXTENSION_ENTRY, unixMode: undefined }]);
    checkLayerZip(zip, 'x86_64');
  });

  it('a missing zip: says to run make layer', () => {
    const zip = path.join(tmpDir(), 'layer-arm64.zip');
    assert.throws(() => checkLayerZip(zip, 'arm64'), (e: Error) => {
      assert.match(e.message, /Layer zip for arm64 not found: .*layer-arm64\.zip\. Run `make layer`/);
      return true;
    });
  });

  it('not a zip', () => {
    const zip = path.join(tmpDir(), 'l.zip');
    fs.writeFileSync(zip, 'not a zip at all, just some text that is long enough');
    assert.throws(() => checkLayerZip(zip, 'x86_64'), /unreadable: .* is not a ZIP archive/);
  });

  it('a zip without extensions/kinesis-telemetry-extension', () => {
    const zip = writeZip(path.join(tmpDir(), 'l.zip'), [{ name: 'kinesis-telemetry-extension', data: 'x' }]);
    assert.throws(() => checkLayerZip(zip, 'x86_64'), /has no extensions\/kinesis-telemetry-extension/);
  });

  it('an extension that is not executable', () => {
    const zip = writeZip(path.join(tmpDir(), 'l.zip'), [{ name: EXTENSION_ENTRY, data: 'x', mode: 0o100644 }]);
    assert.throws(() => checkLayerZip(zip, 'arm64'), /is not executable \(mode 644\)/);
  });

  it('the app fails at synth with the make layer message when build/ has no zips', () => {
    assert.throws(() => appFromContext({ layerDir: tmpDir() }), /Layer zip for x86_64 not found: .*Run `make layer`/);
  });

  const built = layerZipPaths(path.join(repoRoot(), 'build'));
  const haveBuilt = fs.existsSync(built.x86_64) && fs.existsSync(built.arm64);
  it('the zips of `make layer`, when present, pass the same check', { skip: !haveBuilt && 'no build/layer-*.zip (run make layer)' }, () => {
    checkLayerZip(built.x86_64, 'x86_64');
    checkLayerZip(built.arm64, 'arm64');
  });
});
