import * as assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { App, CfnElement, Duration, Size, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as kinesis from 'aws-cdk-lib/aws-kinesis';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import {
  ExtensionLayers,
  ExtensionLogLevel,
  Flush,
  KinesisTelemetryExtension,
  KinesisTelemetryExtensionLayers,
  Overflow,
  PartitionKey,
  StreamReference,
  TelemetryType,
} from '../lib';
import { layerDir, tmpDir } from './helpers';
import { layerZipPaths } from '../lib/layers';

const X86_ARN = 'arn:aws:lambda:eu-west-1:111122223333:layer:kinesis-telemetry-extension-x86_64:3';
const ARM_ARN = 'arn:aws:lambda:eu-west-1:111122223333:layer:kinesis-telemetry-extension-arm64:3';

/** A user's stack: their own function and stream, the published layers by ARN. */
function userStack() {
  const app = new App({ outdir: tmpDir('kte-out-'), analyticsReporting: false });
  const stack = new Stack(app, 'UserStack');
  const stream = new kinesis.Stream(stack, 'Stream', { encryption: kinesis.StreamEncryption.MANAGED });
  const layers = KinesisTelemetryExtensionLayers.fromLayerVersionArns(stack, 'KteLayers', {
    x86_64: X86_ARN,
    arm64: ARM_ARN,
  });
  const fn = (id: string, architecture = lambda.Architecture.X86_64, runtime = lambda.Runtime.PYTHON_3_13) =>
    new lambda.Function(stack, id, {
      runtime,
      architecture,
      handler: 'index.handler',
      code: lambda.Code.fromInline('def handler(e, c):\n    return 1\n'),
    });
  return { stack, stream, layers, fn };
}

function logicalId(stack: Stack, c: { node: { defaultChild?: unknown } }): string {
  return stack.getLogicalId(c.node.defaultChild as CfnElement);
}

function functionProps(template: Template, prefix: string): any {
  const found = Object.entries(template.findResources('AWS::Lambda::Function')).filter(([id]) => id.startsWith(prefix));
  assert.equal(found.length, 1);
  return (found[0][1] as any).Properties;
}

function rolePolicyStatements(template: Template, prefix: string): any[] {
  const found = Object.entries(template.findResources('AWS::IAM::Policy')).filter(([id]) => id.startsWith(prefix));
  return found.flatMap(([, p]: [string, any]) => p.Properties.PolicyDocument.Statement);
}

describe('KinesisTelemetryExtension', () => {
  it('adds the layer of the function architecture, KTE_STREAM_ARN and PutRecords', () => {
    const { stack, stream, layers, fn } = userStack();
    const arm = fn('Arm', lambda.Architecture.ARM_64);
    const x86 = fn('X86', lambda.Architecture.X86_64, lambda.Runtime.NODEJS_22_X);
    const a = new KinesisTelemetryExtension(stack, 'ArmKte', { function: arm, stream, layers });
    const b = new KinesisTelemetryExtension(stack, 'X86Kte', { function: x86, stream, layers });
    assert.equal(a.architecture, 'arm64');
    assert.equal(b.architecture, 'x86_64');
    const t = Template.fromStack(stack);
    const streamArn = { 'Fn::GetAtt': [logicalId(stack, stream), 'Arn'] };
    for (const [id, arch, arn] of [
      ['Arm', 'arm64', ARM_ARN],
      ['X86', 'x86_64', X86_ARN],
    ]) {
      const p = functionProps(t, id);
      assert.deepEqual(p.Architectures, [arch]);
      assert.deepEqual(p.Layers, [arn]);
      assert.deepEqual(p.Environment, { Variables: { KTE_STREAM_ARN: streamArn } });
      assert.deepEqual(rolePolicyStatements(t, `${id}ServiceRole`), [
        { Effect: 'Allow', Action: 'kinesis:PutRecords', Resource: streamArn },
      ]);
    }
  });

  it('keeps the layers and environment the function already has', () => {
    const { stack, stream, layers } = userStack();
    const other = lambda.LayerVersion.fromLayerVersionArn(stack, 'Other', 'arn:aws:lambda:eu-west-1:111122223333:layer:other:1');
    const f = new lambda.Function(stack, 'Fn', {
      runtime: lambda.Runtime.NODEJS_22_X,
      handler: 'index.handler',
      code: lambda.Code.fromInline('exports.handler = async () => 1;'),
      layers: [other],
      environment: { APP_SETTING: 'x' },
    });
    new KinesisTelemetryExtension(stack, 'Kte', { function: f, stream, layers });
    const p = functionProps(Template.fromStack(stack), 'Fn');
    assert.deepEqual(p.Layers, ['arn:aws:lambda:eu-west-1:111122223333:layer:other:1', X86_ARN]);
    assert.deepEqual(Object.keys(p.Environment.Variables).sort(), ['APP_SETTING', 'KTE_STREAM_ARN']);
  });

  it('sets every typed KTE_* setting', () => {
    const { stack, stream, layers, fn } = userStack();
    const f = fn('Fn', lambda.Architecture.ARM_64);
    const kte = new KinesisTelemetryExtension(stack, 'Kte', {
      function: f,
      stream,
      layers,
      streamReference: StreamReference.NAME,
      types: [TelemetryType.PLATFORM, TelemetryType.FUNCTION, TelemetryType.PLATFORM],
      flush: Flush.periodic(Duration.seconds(5)),
      flushWait: Duration.millis(500),
      flushTimeout: Duration.seconds(1),
      partitionKey: PartitionKey.REQUEST,
      maxBufferBytes: Size.mebibytes(32),
      overflow: Overflow.DROP_NEWEST,
      bufferTimeout: Duration.millis(100),
      bufferMaxBytes: Size.kibibytes(512),
      bufferMaxItems: 5000,
      maxRecordBytes: Size.kibibytes(256),
      maxBodyBytes: Size.mebibytes(8),
      connectTimeout: Duration.seconds(2),
      requestTimeout: Duration.seconds(10),
      logLevel: ExtensionLogLevel.INFO,
      endpoint: 'https://kinesis-fips.us-east-1.amazonaws.com',
    });
    const expected = {
      KTE_STREAM_NAME: { Ref: logicalId(stack, stream) },
      KTE_TYPES: 'platform,function',
      KTE_FLUSH: 'periodic,5000',
      KTE_FLUSH_WAIT_MS: '500',
      KTE_FLUSH_TIMEOUT_MS: '1000',
      KTE_PARTITION_KEY: 'request',
      KTE_MAX_BUFFER_BYTES: '33554432',
      KTE_OVERFLOW: 'drop-newest',
      KTE_BUFFER_TIMEOUT_MS: '100',
      KTE_BUFFER_MAX_BYTES: '524288',
      KTE_BUFFER_MAX_ITEMS: '5000',
      KTE_MAX_RECORD_BYTES: '262144',
      KTE_MAX_BODY_BYTES: '8388608',
      KTE_CONNECT_TIMEOUT_MS: '2000',
      KTE_REQUEST_TIMEOUT_MS: '10000',
      KTE_LOG_LEVEL: 'info',
      KTE_ENDPOINT: 'https://kinesis-fips.us-east-1.amazonaws.com',
    };
    assert.deepEqual(functionProps(Template.fromStack(stack), 'Fn').Environment.Variables, expected);
    assert.deepEqual(Object.keys(kte.environment).sort(), Object.keys(expected).sort());
  });

  it('Flush.end() and Flush.continuous()', () => {
    assert.equal(Flush.end().value, 'end');
    assert.equal(Flush.continuous(Duration.seconds(1)).value, 'continuous,1000');
    assert.throws(() => Flush.continuous(Duration.minutes(20)), /interval must be from 1 ms to 900000 ms/);
  });

  for (const [name, opts, message] of [
    ['bufferTimeout below Lambda\'s 25 ms', { bufferTimeout: Duration.millis(10) }, /KTE_BUFFER_TIMEOUT_MS must be a whole number from 25 to 30000 ms, got 10 ms/],
    ['maxBufferBytes below 1 MiB', { maxBufferBytes: Size.kibibytes(512) }, /KTE_MAX_BUFFER_BYTES must be a whole number from 1048576 to 1073741824 bytes/],
    ['bufferMaxItems above 10000', { bufferMaxItems: 20000 }, /KTE_BUFFER_MAX_ITEMS must be a whole number from 1000 to 10000/],
    ['maxRecordBytes above 1 MiB', { maxRecordBytes: Size.mebibytes(2) }, /KTE_MAX_RECORD_BYTES/],
    ['no types', { types: [] }, /types must name at least one/],
    ['a non-http endpoint', { endpoint: 'kinesis.local:4568' }, /endpoint must start with https:\/\//],
  ] as const) {
    it(`rejects ${name}`, () => {
      const { stack, stream, layers, fn } = userStack();
      assert.throws(
        () => new KinesisTelemetryExtension(stack, 'Kte', { function: fn('Fn'), stream, layers, ...(opts as object) }),
        message,
      );
    });
  }

  it('fails clearly when the layer for the function architecture is missing', () => {
    const { stack, stream, fn } = userStack();
    const onlyX86: ExtensionLayers = { x86_64: lambda.LayerVersion.fromLayerVersionArn(stack, 'L', X86_ARN) };
    assert.throws(
      () => new KinesisTelemetryExtension(stack, 'Kte', { function: fn('Fn', lambda.Architecture.ARM_64), stream, layers: onlyX86 }),
      /UserStack\/Fn runs on arm64 but no arm64 layer was given/,
    );
  });

  it('takes layer ARNs instead of layers', () => {
    const { stack, stream, fn } = userStack();
    const f = fn('Fn', lambda.Architecture.ARM_64);
    new KinesisTelemetryExtension(stack, 'Kte', { function: f, stream, layerArns: { x86_64: X86_ARN, arm64: ARM_ARN } });
    assert.deepEqual(functionProps(Template.fromStack(stack), 'Fn').Layers, [ARM_ARN]);
    assert.throws(
      () => new KinesisTelemetryExtension(stack, 'Kte2', { function: fn('Fn2'), stream, layerArns: { arm64: ARM_ARN } }),
      /UserStack\/Fn2 runs on x86_64 but no x86_64 layer was given/,
    );
    assert.throws(
      () => new KinesisTelemetryExtension(stack, 'Kte3', { function: fn('Fn3'), stream }),
      /give either layers or layerArns/,
    );
  });

  it('a customer-managed stream key adds kms:GenerateDataKey on that key, for this stream only', () => {
    const { stack, layers, fn } = userStack();
    const key = new kms.Key(stack, 'Key', { enableKeyRotation: true });
    const stream = new kinesis.Stream(stack, 'CmkStream', { encryption: kinesis.StreamEncryption.KMS, encryptionKey: key });
    new KinesisTelemetryExtension(stack, 'Kte', { function: fn('Fn'), stream, layers });
    const t = Template.fromStack(stack);
    const streamArn = { 'Fn::GetAtt': [logicalId(stack, stream), 'Arn'] };
    assert.deepEqual(rolePolicyStatements(t, 'FnServiceRole'), [
      { Effect: 'Allow', Action: 'kinesis:PutRecords', Resource: streamArn },
      {
        Effect: 'Allow',
        Action: 'kms:GenerateDataKey',
        Resource: { 'Fn::GetAtt': [logicalId(stack, key), 'Arn'] },
        Condition: { StringEquals: { 'kms:EncryptionContext:aws:kinesis:arn': streamArn } },
      },
    ]);
    // Nothing was added to the key policy: the grant is on the role only.
    const keyPolicy = JSON.stringify(Object.values(t.findResources('AWS::KMS::Key'))[0]);
    assert.doesNotMatch(keyPolicy, /GenerateDataKey/);
  });

  it('works with an imported stream and key (another stack or account)', () => {
    const { stack, layers, fn } = userStack();
    const streamArn = 'arn:aws:kinesis:eu-west-1:444455556666:stream/central-telemetry';
    const keyArn = 'arn:aws:kms:eu-west-1:444455556666:key/1234abcd-12ab-34cd-56ef-1234567890ab';
    const stream = kinesis.Stream.fromStreamAttributes(stack, 'Central', {
      streamArn,
      encryptionKey: kms.Key.fromKeyArn(stack, 'CentralKey', keyArn),
    });
    new KinesisTelemetryExtension(stack, 'Kte', { function: fn('Fn'), stream, layers });
    const t = Template.fromStack(stack);
    assert.deepEqual(functionProps(t, 'Fn').Environment.Variables, { KTE_STREAM_ARN: streamArn });
    assert.deepEqual(rolePolicyStatements(t, 'FnServiceRole'), [
      { Effect: 'Allow', Action: 'kinesis:PutRecords', Resource: streamArn },
      {
        Effect: 'Allow',
        Action: 'kms:GenerateDataKey',
        Resource: keyArn,
        Condition: { StringEquals: { 'kms:EncryptionContext:aws:kinesis:arn': streamArn } },
      },
    ]);
    t.resourceCountIs('AWS::Kinesis::StreamPolicy', 0);
  });

  it('grantPermissions: false grants nothing', () => {
    const { stack, stream, layers, fn } = userStack();
    const kte = new KinesisTelemetryExtension(stack, 'Kte', { function: fn('Fn'), stream, layers, grantPermissions: false });
    assert.equal(kte.statements.length, 0);
    Template.fromStack(stack).resourceCountIs('AWS::IAM::Policy', 0);
  });

  it('layers from the SSM parameters the stack publishes, resolved at deploy time', () => {
    const { stack, stream } = userStack();
    const layers = KinesisTelemetryExtensionLayers.fromSsmParameters(stack, 'Published');
    const f = new lambda.Function(stack, 'Fn', {
      runtime: lambda.Runtime.PYTHON_3_13,
      architecture: lambda.Architecture.ARM_64,
      handler: 'index.handler',
      code: lambda.Code.fromInline('def handler(e, c):\n    return 1\n'),
    });
    new KinesisTelemetryExtension(stack, 'Kte', { function: f, stream, layers });
    const t = Template.fromStack(stack);
    const params = t.toJSON().Parameters;
    const ssmParam = Object.entries(params).find(
      ([, p]: [string, any]) => p.Default === '/kinesis-telemetry-extension/layer/arm64/arn',
    );
    assert.ok(ssmParam, JSON.stringify(params));
    assert.equal((ssmParam[1] as any).Type, 'AWS::SSM::Parameter::Value<String>');
    assert.deepEqual(functionProps(t, 'Fn').Layers, [{ Ref: ssmParam[0] }]);
    // Only the architecture in use is looked up.
    assert.equal(Object.values(params).filter((p: any) => /\/layer\//.test(String(p.Default))).length, 1);
  });

  it('layers built from zips in a user stack', () => {
    const app = new App({ outdir: tmpDir('kte-out-'), analyticsReporting: false });
    const stack = new Stack(app, 'S');
    const layers = new KinesisTelemetryExtensionLayers(stack, 'L', {
      zips: layerZipPaths(layerDir()),
      layerNamePrefix: 'kte',
    });
    const t = Template.fromStack(stack);
    t.hasResourceProperties('AWS::Lambda::LayerVersion', { LayerName: 'kte-arm64', CompatibleArchitectures: ['arm64'] });
    t.hasResourceProperties('AWS::Lambda::LayerVersion', { LayerName: 'kte-x86_64', CompatibleArchitectures: ['x86_64'] });
    assert.ok(layers.arm64 && layers.x86_64);
  });
});
