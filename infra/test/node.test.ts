import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { repoRoot } from '../lib/app';

// The tests run on a Node.js line AWS CDK still supports (scripts/cdk-node.sh
// holds the floor, from https://docs.aws.amazon.com/cdk/v2/guide/node-versions.html,
// and picks or installs such a node for make synth / make test-infra).
describe('node', () => {
  it('is one AWS CDK supports (scripts/cdk-node.sh MIN_MAJOR)', () => {
    const script = fs.readFileSync(path.join(repoRoot(), 'scripts', 'cdk-node.sh'), 'utf8');
    const m = /^MIN_MAJOR=(\d+)$/m.exec(script);
    assert.ok(m, 'MIN_MAJOR=N in scripts/cdk-node.sh');
    const major = Number(process.versions.node.split('.')[0]);
    assert.ok(
      major >= Number(m[1]),
      `node ${process.version} is older than AWS CDK supports (${m[1]}.x or later): run make test-infra, or npm test under scripts/cdk-node.sh exec`,
    );
  });
});
