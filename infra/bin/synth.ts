#!/usr/bin/env node
// Offline synth: runs the app in this process, without the CDK CLI, so that
// nothing is looked up (no credentials, no account or region discovery, no
// notices or version checks, no telemetry). Writes the cloud assembly
// (CloudFormation templates and the layer zips as assets) to infra/cdk.out.
//
//   node dist/bin/synth.js [-c key=value]... [-o DIR] [-q]
//
// Context comes from cdk.json's "context", then -c/--context (which wins).
import * as fs from 'fs';
import * as path from 'path';
import { App } from 'aws-cdk-lib';
import { buildApp, cdkJsonContext, CONTEXT_KEYS, readCdkJson, repoRoot } from '../lib/app';

function usage(): string {
  return [
    'usage: npm run synth -- [-c key=value]... [-o DIR] [-q]',
    '',
    'context keys:',
    ...Object.entries(CONTEXT_KEYS).map(([k, v]) => `  ${k.padEnd(17)} ${v}`),
    '',
  ].join('\n');
}

function main(argv: string[]): number {
  const context = cdkJsonContext();
  let outdir = path.join(repoRoot(), 'infra', readCdkJson().output ?? 'cdk.out');
  let quiet = false;

  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = (): string => {
      const eq = a.indexOf('=');
      if (a.startsWith('--') && eq > 0) return a.slice(eq + 1);
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++i];
    };
    if (a === '-h' || a === '--help') {
      process.stdout.write(usage());
      return 0;
    } else if (a === '-c' || a === '--context' || a.startsWith('--context=')) {
      const kv = value();
      const eq = kv.indexOf('=');
      if (eq <= 0) throw new Error(`context must be key=value, got '${kv}'`);
      context[kv.slice(0, eq)] = kv.slice(eq + 1);
    } else if (a === '-o' || a === '--output' || a.startsWith('--output=')) {
      outdir = path.resolve(value());
    } else if (a === '-q' || a === '--quiet') {
      quiet = true;
    } else {
      throw new Error(`unknown argument '${a}'\n${usage()}`);
    }
  }

  // Start from an empty assembly directory so no stale template survives, but
  // never empty a directory that is not a cloud assembly.
  if (fs.existsSync(outdir)) {
    const entries = fs.readdirSync(outdir);
    if (entries.length && !entries.includes('manifest.json')) {
      throw new Error(`${outdir} is not empty and is not a cloud assembly; choose another -o`);
    }
    fs.rmSync(outdir, { recursive: true, force: true });
  }

  const app = new App({ outdir, context, analyticsReporting: false });
  buildApp(app);
  const assembly = app.synth();

  let errors = 0;
  for (const stack of assembly.stacks) {
    for (const m of stack.messages) {
      if (m.level === 'error') errors++;
      if (m.level === 'error' || m.level === 'warning') {
        process.stderr.write(`[${m.level}] ${m.id}: ${String(m.entry.data)}\n`);
      }
    }
    if (!quiet) process.stdout.write(`${path.relative(process.cwd(), path.join(outdir, stack.templateFile))}\n`);
  }
  if (errors) {
    process.stderr.write(`synth: ${errors} error(s) above\n`);
    return 1;
  }
  return 0;
}

try {
  process.exitCode = main(process.argv.slice(2));
} catch (e) {
  process.stderr.write(`error: ${(e as Error).message}\n`);
  process.exitCode = 1;
}
