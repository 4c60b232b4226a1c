// Test helpers: small fixture layer zips (written here, no zip tool needed),
// apps built from context, and a cdk-nag run.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { App, PolicyValidationPluginReport, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks } from 'cdk-nag';
import { buildApp, cdkJsonContext } from '../lib/app';
import { KinesisTelemetryExtensionStack } from '../lib/stack';

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

function crc32(b: Buffer): number {
  let c = 0xffffffff;
  for (const x of b) c = CRC_TABLE[(c ^ x) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

export interface FixtureEntry {
  name: string;
  data?: string;
  /** Unix mode (type and permissions); 0 leaves the external attributes empty (no Unix mode recorded). */
  mode?: number;
}

/** Writes a stored (uncompressed) ZIP archive. */
export function writeZip(file: string, entries: FixtureEntry[]): string {
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  for (const e of entries) {
    const name = Buffer.from(e.name, 'utf8');
    const data = Buffer.from(e.data ?? '', 'utf8');
    const crc = crc32(data);
    const mode = e.mode ?? (e.name.endsWith('/') ? 0o040755 : 0o100755);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4); // version needed
    local.writeUInt16LE(0, 6); // flags
    local.writeUInt16LE(0, 8); // stored
    local.writeUInt16LE(0, 10); // time 00:00
    local.writeUInt16LE(0x21, 12); // date 1980-01-01
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(data.length, 18);
    local.writeUInt32LE(data.length, 22);
    local.writeUInt16LE(name.length, 26);
    local.writeUInt16LE(0, 28);
    const central = Buffer.alloc(46);
    central.writeUInt32LE(0x02014b50, 0);
    central.writeUInt16LE(mode ? (3 << 8) | 20 : 20, 4); // made by Unix when a mode is given
    central.writeUInt16LE(20, 6);
    central.writeUInt16LE(0, 8);
    central.writeUInt16LE(0, 10);
    central.writeUInt16LE(0, 12);
    central.writeUInt16LE(0x21, 14);
    central.writeUInt32LE(crc, 16);
    central.writeUInt32LE(data.length, 20);
    central.writeUInt32LE(data.length, 24);
    central.writeUInt16LE(name.length, 28);
    central.writeUInt16LE(0, 30);
    central.writeUInt16LE(0, 32);
    central.writeUInt16LE(0, 34);
    central.writeUInt16LE(0, 36);
    central.writeUInt32LE((mode << 16) >>> 0, 38);
    central.writeUInt32LE(offset, 42);
    locals.push(local, name, data);
    centrals.push(central, name);
    offset += local.length + name.length + data.length;
  }
  const cd = Buffer.concat(centrals);
  const eocd = Buffer.alloc(22);
  eocd.writeUInt32LE(0x06054b50, 0);
  eocd.writeUInt16LE(entries.length, 8);
  eocd.writeUInt16LE(entries.length, 10);
  eocd.writeUInt32LE(cd.length, 12);
  eocd.writeUInt32LE(offset, 16);
  fs.writeFileSync(file, Buffer.concat([...locals, cd, eocd]));
  return file;
}

const made: string[] = [];
process.on('exit', () => {
  for (const d of made) fs.rmSync(d, { recursive: true, force: true });
});

/** A new temporary directory, removed when the test process exits. */
export function tmpDir(prefix = 'kte-infra-'): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  made.push(d);
  return d;
}

/** A directory with fixture layer-x86_64.zip and layer-arm64.zip, each holding an executable extensions/kinesis-telemetry-extension. */
export function fixtureLayerDir(): string {
  const dir = tmpDir('kte-layers-');
  for (const arch of ['x86_64', 'arm64']) {
    writeZip(path.join(dir, `layer-${arch}.zip`), [
      { name: 'extensions/' },
      { name: 'extensions/kinesis-telemetry-extension', data: `#!/bin/sh\n# fixture ${arch}\n`, mode: 0o100755 },
    ]);
  }
  return dir;
}

let sharedLayerDir: string | undefined;
export function layerDir(): string {
  sharedLayerDir ??= fixtureLayerDir();
  return sharedLayerDir;
}

/**
 * The app as `npm run synth -- -c k=v ...` builds it (cdk.json's feature
 * flags included), on fixture layers, into a temporary assembly directory.
 */
export function appFromContext(context: Record<string, string> = {}): {
  app: App;
  stack: KinesisTelemetryExtensionStack;
  template: Template;
} {
  const app = new App({
    outdir: tmpDir('kte-out-'),
    context: { ...cdkJsonContext(), layerDir: layerDir(), ...context },
    analyticsReporting: false,
  });
  const stack = buildApp(app);
  return { app, stack, template: Template.fromStack(stack) };
}

/** cdk-nag AwsSolutions findings on `stack` that no acknowledgement covers. */
export function nagFindings(stack: Stack): string[] {
  const report: PolicyValidationPluginReport = new AwsSolutionsChecks(stack).validateScope(stack);
  return report.violations.flatMap((v) =>
    v.violatingResources.map((r) => `${v.ruleName} (${v.severity}) at ${r.constructPath ?? r.resourceLogicalId}: ${v.description}`),
  );
}
