// The offline synth entry point (npm run synth / make synth) as a separate
// process, with no AWS variable in its environment.
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { layerDir, tmpDir } from './helpers';

const SYNTH = path.join(__dirname, '..', 'bin', 'synth.js');

function synth(...args: string[]) {
  // Only what node needs: no credentials, no region, no profile.
  const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: tmpDir('kte-home-') };
  const r = spawnSync(process.execPath, [SYNTH, ...args], { env, encoding: 'utf8', timeout: 120_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('bin/synth.js', () => {
  it('writes the template and both layer assets, offline and without credentials', () => {
    const out = path.join(tmpDir(), 'cdk.out');
    const r = synth('-c', `layerDir=${layerDir()}`, '-c', 'streamMode=on-demand', '-o', out);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stderr, '');
    const templateFile = path.join(out, 'KinesisTelemetryExtension.template.json');
    assert.match(r.stdout, /KinesisTelemetryExtension\.template\.json/);
    const template = JSON.parse(fs.readFileSync(templateFile, 'utf8'));
    const stream = Object.values<any>(template.Resources).find((x) => x.Type === 'AWS::Kinesis::Stream');
    assert.deepEqual(stream.Properties.StreamModeDetails, { StreamMode: 'ON_DEMAND' });
    const zips = fs.readdirSync(out).filter((f) => /^asset\..*\.zip$/.test(f));
    assert.equal(zips.length, 2);
    const manifest = JSON.parse(fs.readFileSync(path.join(out, 'manifest.json'), 'utf8'));
    const stack = manifest.artifacts.KinesisTelemetryExtension;
    assert.equal(stack.environment, 'aws://unknown-account/unknown-region');
    assert.equal(manifest.missing, undefined); // no context lookups needed
  });

  it('stackName context names the stack; a second run replaces the assembly', () => {
    const out = path.join(tmpDir(), 'cdk.out');
    assert.equal(synth('-c', `layerDir=${layerDir()}`, '-o', out, '-q').status, 0);
    const r = synth('-c', `layerDir=${layerDir()}`, '-c', 'stackName=Kte-Dev', '-o', out, '-q');
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, '');
    assert.deepEqual(fs.readdirSync(out).filter((f) => f.endsWith('.template.json')), ['Kte-Dev.template.json']);
  });

  it('fails with the make layer message when the zips are missing', () => {
    const r = synth('-c', `layerDir=${tmpDir()}`, '-o', path.join(tmpDir(), 'cdk.out'));
    assert.equal(r.status, 1);
    assert.match(r.stderr, /^error: Layer zip for x86_64 not found: .*layer-x86_64\.zip\. Run `make layer`/);
  });

  it('fails on bad context and bad arguments', () => {
    let r = synth('-c', `layerDir=${layerDir()}`, '-c', 'streamMode=fast', '-o', path.join(tmpDir(), 'o'));
    assert.equal(r.status, 1);
    assert.match(r.stderr, /context streamMode=fast: expected provisioned or on-demand/);
    r = synth('--bogus');
    assert.equal(r.status, 1);
    assert.match(r.stderr, /unknown argument '--bogus'/);
    r = synth('-c', 'novalue');
    assert.equal(r.status, 1);
    assert.match(r.stderr, /context must be key=value/);
  });

  it('will not empty a directory that is not a cloud assembly', () => {
    const out = tmpDir();
    fs.writeFileSync(path.join(out, 'precious.txt'), 'keep me');
    const r = synth('-c', `layerDir=${layerDir()}`, '-o', out);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /is not empty and is not a cloud assembly/);
    assert.equal(fs.readFileSync(path.join(out, 'precious.txt'), 'utf8'), 'keep me');
  });

  it('--help lists the context keys', () => {
    const r = synth('--help');
    assert.equal(r.status, 0);
    for (const k of ['streamMode', 'shardCount', 'retentionHours', 'kmsKey', 'logRetentionDays', 'layerDir']) {
      assert.match(r.stdout, new RegExp(`\\n  ${k} `));
    }
  });
});
