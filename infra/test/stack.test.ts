import * as assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CfnElement, Stack, Token } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { IConstruct } from 'constructs';
import { appFromContext } from './helpers';

function logicalId(c: IConstruct): string {
  return Stack.of(c).getLogicalId(c.node.defaultChild as CfnElement);
}

/** The single resource of `type` whose logical id starts with `prefix`. */
function only(template: Template, type: string, prefix: string): { id: string; r: any } {
  const found = Object.entries(template.findResources(type)).filter(([id]) => id.startsWith(prefix));
  assert.equal(found.length, 1, `one ${type} named ${prefix}*, found ${found.map(([id]) => id).join(', ') || 'none'}`);
  return { id: found[0][0], r: found[0][1] };
}

describe('the stack with default context', () => {
  const { stack, template } = appFromContext();
  const streamId = logicalId(stack.stream);
  const streamArn = { 'Fn::GetAtt': [streamId, 'Arn'] };
  const layerX86 = { Ref: logicalId(stack.layers.x86_64) };
  const layerArm = { Ref: logicalId(stack.layers.arm64) };

  it('has exactly the expected resources', () => {
    template.resourceCountIs('AWS::Kinesis::Stream', 1);
    template.resourceCountIs('AWS::Lambda::LayerVersion', 2);
    template.resourceCountIs('AWS::Lambda::Function', 2);
    template.resourceCountIs('AWS::Logs::LogGroup', 2);
    template.resourceCountIs('AWS::IAM::ManagedPolicy', 1);
    template.resourceCountIs('AWS::IAM::Role', 2);
    template.resourceCountIs('AWS::SSM::Parameter', 5);
    template.resourceCountIs('AWS::KMS::Key', 0);
    template.resourceCountIs('AWS::CDK::Metadata', 0); // version reporting off
  });

  it('stream: provisioned, 1 shard, 24 h, KMS with the AWS-managed key, retained', () => {
    const { r } = only(template, 'AWS::Kinesis::Stream', 'Stream');
    assert.deepEqual(r.Properties, {
      RetentionPeriodHours: 24,
      ShardCount: 1,
      StreamEncryption: { EncryptionType: 'KMS', KeyId: 'alias/aws/kinesis' },
      StreamModeDetails: { StreamMode: 'PROVISIONED' },
    });
    assert.equal(r.DeletionPolicy, 'Retain');
  });

  it('one layer per architecture, each for its architecture only and every runtime', () => {
    for (const [arch, ref] of [
      ['x86_64', layerX86],
      ['arm64', layerArm],
    ] as const) {
      const { id, r } = only(template, 'AWS::Lambda::LayerVersion', `Layers${arch.replace('_', '')}`);
      assert.equal(id, ref.Ref);
      assert.deepEqual(r.Properties.CompatibleArchitectures, [arch]);
      assert.equal(r.Properties.CompatibleRuntimes, undefined);
      assert.equal(r.Properties.LayerName, `kinesis-telemetry-extension-${arch}`);
      assert.match(r.Properties.Content.S3Key, /^[0-9a-f]{64}\.zip$/);
      assert.equal(r.DeletionPolicy, 'Retain');
    }
  });

  it('the managed policy is exactly PutRecords on this stream', () => {
    const { r } = only(template, 'AWS::IAM::ManagedPolicy', 'ProducerPolicy');
    assert.deepEqual(r.Properties.PolicyDocument, {
      Version: '2012-10-17',
      Statement: [{ Effect: 'Allow', Action: 'kinesis:PutRecords', Resource: streamArn }],
    });
  });

  it('Python 3.12 example on arm64 with the arm64 layer, JSON logs, its log group and KTE_STREAM_ARN', () => {
    const { id: logsId } = only(template, 'AWS::Logs::LogGroup', 'ExamplePythonLogs');
    const { r } = only(template, 'AWS::Lambda::Function', 'ExamplePython');
    assert.equal(r.Properties.Runtime, 'python3.12');
    assert.deepEqual(r.Properties.Architectures, ['arm64']);
    assert.deepEqual(r.Properties.Layers, [layerArm]);
    assert.deepEqual(r.Properties.LoggingConfig, {
      LogFormat: 'JSON',
      LogGroup: { Ref: logsId },
      ApplicationLogLevel: 'INFO',
      SystemLogLevel: 'INFO',
    });
    assert.deepEqual(r.Properties.Environment, { Variables: { KTE_STREAM_ARN: streamArn } });
    assert.equal(r.Properties.Handler, 'index.handler');
    assert.match(r.Properties.Code.ZipFile, /def handler\(event, context\):/);
  });

  it('Node.js 22 example on x86_64 with the x86_64 layer, JSON logs, its log group and KTE_STREAM_ARN', () => {
    const { id: logsId } = only(template, 'AWS::Logs::LogGroup', 'ExampleNodeLogs');
    const { r } = only(template, 'AWS::Lambda::Function', 'ExampleNode');
    assert.equal(r.Properties.Runtime, 'nodejs22.x');
    assert.deepEqual(r.Properties.Architectures, ['x86_64']);
    assert.deepEqual(r.Properties.Layers, [layerX86]);
    assert.deepEqual(r.Properties.LoggingConfig, {
      LogFormat: 'JSON',
      LogGroup: { Ref: logsId },
      ApplicationLogLevel: 'INFO',
      SystemLogLevel: 'INFO',
    });
    assert.deepEqual(r.Properties.Environment, { Variables: { KTE_STREAM_ARN: streamArn } });
    assert.match(r.Properties.Code.ZipFile, /exports\.handler = async/);
  });

  it('log groups keep 14 days and go with the stack', () => {
    for (const prefix of ['ExamplePythonLogs', 'ExampleNodeLogs']) {
      const { r } = only(template, 'AWS::Logs::LogGroup', prefix);
      assert.deepEqual(r.Properties, { RetentionInDays: 14 });
      assert.equal(r.DeletionPolicy, 'Delete');
    }
  });

  it('Python role: its own log group and PutRecords, nothing else', () => {
    const { id: logsId } = only(template, 'AWS::Logs::LogGroup', 'ExamplePythonLogs');
    const { id: roleId, r: role } = only(template, 'AWS::IAM::Role', 'ExamplePythonRole');
    assert.equal(role.Properties.ManagedPolicyArns, undefined);
    const { r } = only(template, 'AWS::IAM::Policy', 'ExamplePythonRoleDefaultPolicy');
    assert.deepEqual(r.Properties.Roles, [{ Ref: roleId }]);
    assert.deepEqual(r.Properties.PolicyDocument.Statement, [
      {
        Effect: 'Allow',
        Action: ['logs:CreateLogStream', 'logs:PutLogEvents'],
        Resource: { 'Fn::GetAtt': [logsId, 'Arn'] },
      },
      { Effect: 'Allow', Action: 'kinesis:PutRecords', Resource: streamArn },
    ]);
  });

  it('Node role: its own log group inline, PutRecords through the published managed policy', () => {
    const { id: logsId } = only(template, 'AWS::Logs::LogGroup', 'ExampleNodeLogs');
    const { id: policyId } = only(template, 'AWS::IAM::ManagedPolicy', 'ProducerPolicy');
    const { r: role } = only(template, 'AWS::IAM::Role', 'ExampleNodeRole');
    assert.deepEqual(role.Properties.ManagedPolicyArns, [{ Ref: policyId }]);
    assert.deepEqual(role.Properties.AssumeRolePolicyDocument.Statement, [
      { Action: 'sts:AssumeRole', Effect: 'Allow', Principal: { Service: 'lambda.amazonaws.com' } },
    ]);
    const { r } = only(template, 'AWS::IAM::Policy', 'ExampleNodeRoleDefaultPolicy');
    assert.deepEqual(r.Properties.PolicyDocument.Statement, [
      {
        Effect: 'Allow',
        Action: ['logs:CreateLogStream', 'logs:PutLogEvents'],
        Resource: { 'Fn::GetAtt': [logsId, 'Arn'] },
      },
    ]);
  });

  it('SSM parameters: layer ARN per architecture, policy ARN, stream ARN and name', () => {
    const { id: policyId } = only(template, 'AWS::IAM::ManagedPolicy', 'ProducerPolicy');
    const params = Object.values(template.findResources('AWS::SSM::Parameter')).map((p: any) => p.Properties);
    const byName = Object.fromEntries(params.map((p) => [p.Name, p]));
    assert.deepEqual(Object.keys(byName).sort(), [
      '/kinesis-telemetry-extension/layer/arm64/arn',
      '/kinesis-telemetry-extension/layer/x86_64/arn',
      '/kinesis-telemetry-extension/policy/arn',
      '/kinesis-telemetry-extension/stream/arn',
      '/kinesis-telemetry-extension/stream/name',
    ]);
    assert.deepEqual(byName['/kinesis-telemetry-extension/layer/x86_64/arn'].Value, layerX86);
    assert.deepEqual(byName['/kinesis-telemetry-extension/layer/arm64/arn'].Value, layerArm);
    assert.deepEqual(byName['/kinesis-telemetry-extension/policy/arn'].Value, { Ref: policyId });
    assert.deepEqual(byName['/kinesis-telemetry-extension/stream/arn'].Value, streamArn);
    assert.deepEqual(byName['/kinesis-telemetry-extension/stream/name'].Value, { Ref: streamId });
    for (const p of params) assert.equal(p.Type, 'String');
  });

  it('outputs name the stream, layers, policy and functions', () => {
    assert.deepEqual(Object.keys(template.toJSON().Outputs).sort(), [
      'ExampleNodeFunctionName',
      'ExamplePythonFunctionName',
      'LayerArnArm64',
      'LayerArnX86',
      'ProducerPolicyArn',
      'StreamArn',
      'StreamName',
    ]);
  });

  it('is environment-agnostic: no account or region baked in', () => {
    assert.ok(Token.isUnresolved(stack.account) && Token.isUnresolved(stack.region));
    assert.deepEqual(stack.resolve(stack.account), { Ref: 'AWS::AccountId' });
    assert.deepEqual(stack.resolve(stack.region), { Ref: 'AWS::Region' });
    const text = JSON.stringify(template.toJSON());
    assert.doesNotMatch(text, /\b\d{12}\b/);
    assert.doesNotMatch(text, /(us|eu|ap|sa|ca|me|af|il|mx)-[a-z]+-\d/);
  });
});

describe('stack context', () => {
  it('streamMode=on-demand: ON_DEMAND, no ShardCount', () => {
    const { template } = appFromContext({ streamMode: 'on-demand' });
    template.hasResourceProperties('AWS::Kinesis::Stream', {
      StreamModeDetails: { StreamMode: 'ON_DEMAND' },
      ShardCount: Match.absent(),
      StreamEncryption: { EncryptionType: 'KMS', KeyId: 'alias/aws/kinesis' },
    });
  });

  it('streamMode=provisioned shardCount=2', () => {
    const { template } = appFromContext({ streamMode: 'provisioned', shardCount: '2' });
    template.hasResourceProperties('AWS::Kinesis::Stream', {
      StreamModeDetails: { StreamMode: 'PROVISIONED' },
      ShardCount: 2,
    });
  });

  it('retentionHours=168, logRetentionDays=30, streamName, ssmPrefix', () => {
    const { template } = appFromContext({
      retentionHours: '168',
      logRetentionDays: '30',
      streamName: 'my-telemetry',
      ssmPrefix: '/team/kte',
    });
    template.hasResourceProperties('AWS::Kinesis::Stream', { RetentionPeriodHours: 168, Name: 'my-telemetry' });
    const groups = Object.values(template.findResources('AWS::Logs::LogGroup'));
    assert.equal(groups.length, 2);
    for (const g of groups) assert.equal((g as any).Properties.RetentionInDays, 30);
    const names = Object.values(template.findResources('AWS::SSM::Parameter')).map((p: any) => p.Properties.Name);
    assert.ok(names.length === 5 && names.every((n) => n.startsWith('/team/kte/')), names.join());
  });

  it('examples=false: stream, layers, policy and parameters only', () => {
    const { template } = appFromContext({ examples: 'false' });
    template.resourceCountIs('AWS::Lambda::Function', 0);
    template.resourceCountIs('AWS::Logs::LogGroup', 0);
    template.resourceCountIs('AWS::IAM::Role', 0);
    template.resourceCountIs('AWS::Lambda::LayerVersion', 2);
    template.resourceCountIs('AWS::IAM::ManagedPolicy', 1);
    template.resourceCountIs('AWS::SSM::Parameter', 5);
  });

  it('kmsKey=create: a rotating key, the stream on it, kms:GenerateDataKey on that key only', () => {
    const { stack, template } = appFromContext({ kmsKey: 'create' });
    const keyId = logicalId(stack.key!);
    const streamArn = { 'Fn::GetAtt': [logicalId(stack.stream), 'Arn'] };
    const keyArn = { 'Fn::GetAtt': [keyId, 'Arn'] };
    template.resourceCountIs('AWS::KMS::Key', 1);
    template.hasResourceProperties('AWS::KMS::Key', { EnableKeyRotation: true });
    template.hasResourceProperties('AWS::Kinesis::Stream', {
      StreamEncryption: { EncryptionType: 'KMS', KeyId: keyArn },
    });
    const expected = [
      { Effect: 'Allow', Action: 'kinesis:PutRecords', Resource: streamArn },
      {
        Effect: 'Allow',
        Action: 'kms:GenerateDataKey',
        Resource: keyArn,
        Condition: { StringEquals: { 'kms:EncryptionContext:aws:kinesis:arn': streamArn } },
      },
    ];
    const { r: policy } = only(template, 'AWS::IAM::ManagedPolicy', 'ProducerPolicy');
    assert.deepEqual(policy.Properties.PolicyDocument.Statement, expected);
    const { r: pyPolicy } = only(template, 'AWS::IAM::Policy', 'ExamplePythonRoleDefaultPolicy');
    assert.deepEqual(pyPolicy.Properties.PolicyDocument.Statement.slice(1), expected);
  });

  it('kmsKey=<key ARN>: that key, no new key', () => {
    const arn = 'arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab';
    const { stack, template } = appFromContext({ kmsKey: arn });
    template.resourceCountIs('AWS::KMS::Key', 0);
    template.hasResourceProperties('AWS::Kinesis::Stream', { StreamEncryption: { EncryptionType: 'KMS', KeyId: arn } });
    const { r: policy } = only(template, 'AWS::IAM::ManagedPolicy', 'ProducerPolicy');
    assert.deepEqual(policy.Properties.PolicyDocument.Statement[1], {
      Effect: 'Allow',
      Action: 'kms:GenerateDataKey',
      Resource: arn,
      Condition: {
        StringEquals: { 'kms:EncryptionContext:aws:kinesis:arn': { 'Fn::GetAtt': [logicalId(stack.stream), 'Arn'] } },
      },
    });
  });

  for (const [ctx, message] of [
    [{ streamMode: 'burst' }, /streamMode=burst: expected provisioned or on-demand/],
    [{ streamMode: 'on-demand', shardCount: '2' }, /shardCount applies only to streamMode=provisioned/],
    [{ shardCount: '0' }, /shardCount=0: expected a whole number from 1 to 10000/],
    [{ shardCount: 'two' }, /shardCount=two/],
    [{ retentionHours: '12' }, /retentionHours=12: expected a whole number from 24 to 8760/],
    [{ kmsKey: 'alias/my-key' }, /kmsKey=alias\/my-key: expected aws-managed, create, or a key ARN/],
    [{ logRetentionDays: '15' }, /logRetentionDays=15: CloudWatch Logs accepts 1, 3, 5, 7, 14/],
    [{ examples: 'yes' }, /examples=yes: expected true or false/],
    [{ shardcount: '2' }, /unknown context shardcount/],
    [{ streamName: 'bad name' }, /streamName=bad name/],
    [{ ssmPrefix: 'no-slash' }, /ssmPrefix=no-slash/],
  ] as const) {
    it(`rejects ${JSON.stringify(ctx)}`, () => {
      assert.throws(() => appFromContext(ctx as Record<string, string>), message);
    });
  }
});
