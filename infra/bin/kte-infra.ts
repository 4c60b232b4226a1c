#!/usr/bin/env node
// The app as the CDK CLI runs it (cdk.json "app"): `npx cdk deploy` etc.
// For an offline synth without the CLI use bin/synth.ts (`npm run synth`).
import { App } from 'aws-cdk-lib';
import { buildApp } from '../lib/app';

try {
  const app = new App({ analyticsReporting: false });
  buildApp(app);
  app.synth();
} catch (e) {
  process.stderr.write(`error: ${(e as Error).message}\n`);
  process.exit(1);
}
