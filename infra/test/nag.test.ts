// cdk-nag AwsSolutions: every variant of the app is clean (findings are
// acknowledged in code, with a reason, only where stated), and the check is
// really wired into synth.
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { App, Stack, Validations } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { appFromContext, nagFindings, tmpDir } from './helpers';

const VARIANTS: Record<string, string>[] = [
  {},
  { streamMode: 'on-demand' },
  { streamMode: 'provisioned', shardCount: '4', retentionHours: '48' },
  { kmsKey: 'create' },
  { kmsKey: 'arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab' },
  { examples: 'false' },
];

/** Every IAM statement in a template: inline role policies, AWS::IAM::Policy and AWS::IAM::ManagedPolicy. */
function allStatements(template: any): any[] {
  const out: any[] = [];
  for (const r of Object.values<any>(template.Resources)) {
    if (r.Type === 'AWS::IAM::Policy' || r.Type === 'AWS::IAM::ManagedPolicy') out.push(...r.Properties.PolicyDocument.Statement);
    if (r.Type === 'AWS::IAM::Role') for (const p of r.Properties.Policies ?? []) out.push(...p.PolicyDocument.Statement);
  }
  return out;
}

const list = (x: unknown) => (Array.isArray(x) ? x : [x]);

describe('cdk-nag AwsSolutions and least privilege', () => {
  for (const ctx of VARIANTS) {
    it(`no unacknowledged finding, no wildcard, no logs:*: ${JSON.stringify(ctx)}`, () => {
      const { app, stack, template } = appFromContext(ctx);
      assert.deepEqual(nagFindings(stack), []);
      // The app's own synth (cdk-nag registered as a validation plugin) passes and reports nothing.
      const assembly = app.synth();
      const report = JSON.parse(fs.readFileSync(path.join(assembly.directory, 'validation-report.json'), 'utf8'));
      assert.deepEqual(report.pluginReports, []);

      const statements = allStatements(template.toJSON());
      assert.ok(statements.length > 0);
      for (const s of statements) {
        assert.equal(s.Effect, 'Allow');
        for (const a of list(s.Action)) assert.doesNotMatch(a, /\*/, `wildcard action ${a}`);
        for (const r of list(s.Resource)) {
          assert.notEqual(r, '*');
          if (typeof r === 'string') assert.doesNotMatch(r, /\*/, `wildcard resource ${r}`);
        }
        assert.equal(s.NotAction, undefined);
        assert.equal(s.NotResource, undefined);
      }
      const actions = new Set(statements.flatMap((s) => list(s.Action)));
      const allowed = ['kinesis:PutRecords', 'kms:GenerateDataKey', 'logs:CreateLogStream', 'logs:PutLogEvents'];
      for (const a of actions) assert.ok(allowed.includes(a), `unexpected action ${a}`);
    });
  }

  it('the acknowledgements are the two stated ones, each with a reason', () => {
    const { stack } = appFromContext({ kmsKey: 'create' });
    // Validations.acknowledge() records { '<namespace>::<rule id>': reason } on the construct.
    const acks = stack.node
      .findAll()
      .flatMap((c) => c.node.metadata.filter((m) => m.type === Validations.ACKNOWLEDGED_RULES_METADATA_KEY))
      .flatMap((m) => Object.entries(m.data as Record<string, string>))
      .map(([id, reason]) => ({ id: id.replace(/^annotation::/i, ''), reason }));
    assert.deepEqual([...new Set(acks.map((a) => a.id))].sort(), ['AwsSolutions-KDS3', 'AwsSolutions-L1']);
    for (const a of acks) assert.ok(a.reason.length > 40, `${a.id}: reason too short`);
  });

  it('cdk-nag does report what it should (a default Lambda role and an old runtime)', () => {
    const stack = new Stack(new App({ outdir: tmpDir('kte-out-') }), 'Plain');
    new lambda.Function(stack, 'F', {
      runtime: lambda.Runtime.PYTHON_3_12,
      handler: 'index.handler',
      code: lambda.Code.fromInline('x'),
    });
    const findings = nagFindings(stack);
    assert.ok(findings.some((f) => f.startsWith('AwsSolutions-IAM4')), findings.join('\n'));
    assert.ok(findings.some((f) => f.startsWith('AwsSolutions-L1')), findings.join('\n'));
  });

  it("synth fails on a finding nobody acknowledged (cdk-nag is wired into the app's synth)", () => {
    const { app, stack } = appFromContext();
    const role = stack.node.findChild('ExamplePythonRole') as iam.Role;
    role.addToPrincipalPolicy(new iam.PolicyStatement({ actions: ['logs:*'], resources: ['*'] }));
    const err = console.error;
    console.error = () => {}; // the report goes to stderr as well
    try {
      assert.throws(() => app.synth({ force: true }), /Validation failed/);
    } finally {
      console.error = err;
    }
  });
});
