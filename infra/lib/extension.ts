import { Duration, Size, Token } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kinesis from 'aws-cdk-lib/aws-kinesis';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { Construct } from 'constructs';
import { ExtensionArchitecture, ExtensionLayers } from './layers';

/** Telemetry API event types the extension subscribes to (`KTE_TYPES`). */
export enum TelemetryType {
  PLATFORM = 'platform',
  FUNCTION = 'function',
  EXTENSION = 'extension',
}

/** How records are keyed across shards (`KTE_PARTITION_KEY`, see docs/records.md). */
export enum PartitionKey {
  /** One execution environment's events in order on one shard (the extension's default). */
  ENVIRONMENT = 'environment',
  /** One invoke's events together. */
  REQUEST = 'request',
  /** All of a function's events on one shard. */
  FUNCTION = 'function',
  /** Even spread, no ordering. */
  RANDOM = 'random',
}

/** What goes when the extension's buffer is full (`KTE_OVERFLOW`). */
export enum Overflow {
  DROP_OLDEST = 'drop-oldest',
  DROP_NEWEST = 'drop-newest',
}

/** The extension's own log level (`KTE_LOG_LEVEL`). */
export enum ExtensionLogLevel {
  ERROR = 'error',
  WARN = 'warn',
  INFO = 'info',
  DEBUG = 'debug',
}

/** Where the extension sends records: how the stream is named in the function's environment. */
export enum StreamReference {
  /** `KTE_STREAM_ARN` (sent to Kinesis as `StreamARN`). */
  ARN = 'arn',
  /** `KTE_STREAM_NAME`. */
  NAME = 'name',
}

/** When the extension flushes (`KTE_FLUSH`). */
export class Flush {
  /** After each invoke, once its `platform.runtimeDone` has arrived (the extension's default). */
  static end(): Flush {
    return new Flush('end');
  }
  /** At the end of an invoke, but only when at least `interval` has passed since the last flush. */
  static periodic(interval: Duration): Flush {
    return new Flush(`periodic,${Flush.ms('periodic', interval)}`);
  }
  /** On a timer, also during invokes. */
  static continuous(interval: Duration): Flush {
    return new Flush(`continuous,${Flush.ms('continuous', interval)}`);
  }
  private static ms(mode: string, d: Duration): string {
    const ms = d.toMilliseconds();
    if (!Token.isUnresolved(ms) && (ms < 1 || ms > 900000)) {
      throw new Error(`Flush.${mode}: interval must be from 1 ms to 900000 ms (15 minutes), got ${ms} ms`);
    }
    return Token.isUnresolved(ms) ? Token.asString(ms) : String(ms);
  }
  private constructor(readonly value: string) {}
}

export interface KinesisTelemetryExtensionOptions {
  /** `KTE_STREAM_ARN` or `KTE_STREAM_NAME`. @default StreamReference.ARN */
  readonly streamReference?: StreamReference;
  /** `KTE_TYPES`. @default the extension's: platform, function, extension */
  readonly types?: TelemetryType[];
  /** `KTE_FLUSH`. @default the extension's: Flush.end() */
  readonly flush?: Flush;
  /** `KTE_FLUSH_WAIT_MS`, 0–900000 ms. @default the extension's: 0 (until the invoke's deadline) */
  readonly flushWait?: Duration;
  /** `KTE_FLUSH_TIMEOUT_MS`, 50–900000 ms. @default the extension's: 2 s */
  readonly flushTimeout?: Duration;
  /** `KTE_PARTITION_KEY`. @default the extension's: PartitionKey.ENVIRONMENT */
  readonly partitionKey?: PartitionKey;
  /** `KTE_MAX_BUFFER_BYTES`, 1 MiB–1 GiB. @default the extension's: a tenth of the function's memory, within 8–128 MiB */
  readonly maxBufferBytes?: Size;
  /** `KTE_OVERFLOW`. @default the extension's: Overflow.DROP_OLDEST */
  readonly overflow?: Overflow;
  /** `KTE_BUFFER_TIMEOUT_MS` (Telemetry API buffering), 25–30000 ms. @default the extension's: 25 ms */
  readonly bufferTimeout?: Duration;
  /** `KTE_BUFFER_MAX_BYTES` (Telemetry API buffering), 256 KiB–1 MiB. @default the extension's: 256 KiB */
  readonly bufferMaxBytes?: Size;
  /** `KTE_BUFFER_MAX_ITEMS` (Telemetry API buffering), 1000–10000. @default the extension's: 10000 */
  readonly bufferMaxItems?: number;
  /** `KTE_MAX_RECORD_BYTES`, 1 KiB–1 MiB. @default the extension's: 1 MiB */
  readonly maxRecordBytes?: Size;
  /** `KTE_MAX_BODY_BYTES`, 1–64 MiB. @default the extension's: 6 MiB */
  readonly maxBodyBytes?: Size;
  /** `KTE_CONNECT_TIMEOUT_MS`, 10–60000 ms. @default the extension's: 1 s */
  readonly connectTimeout?: Duration;
  /** `KTE_REQUEST_TIMEOUT_MS`, 100–300000 ms. @default the extension's: 5 s */
  readonly requestTimeout?: Duration;
  /** `KTE_LOG_LEVEL`. @default the extension's: warn */
  readonly logLevel?: ExtensionLogLevel;
  /** `KTE_ENDPOINT` (https://, or http:// for a local endpoint). @default the extension's: https://kinesis.<region>.amazonaws.com */
  readonly endpoint?: string;
  /**
   * Add the producer permissions to the function's role. Turn off when the
   * role gets them otherwise, e.g. from the managed policy the stack publishes
   * in SSM. @default true
   */
  readonly grantPermissions?: boolean;
}

export interface KinesisTelemetryExtensionProps extends KinesisTelemetryExtensionOptions {
  /** The function to attach the extension to. */
  readonly function: lambda.Function;
  /** The stream the extension writes to. A customer-managed `encryptionKey` on it adds `kms:GenerateDataKey` on that key. */
  readonly stream: kinesis.IStream;
  /** The extension's layers; the one for the function's architecture is added. Give this or `layerArns`. */
  readonly layers?: ExtensionLayers;
  /** The extension's layer version ARNs, per architecture, instead of `layers`. */
  readonly layerArns?: { readonly x86_64?: string; readonly arm64?: string };
}

/**
 * The IAM statements a producer of `stream` needs for what the extension
 * calls: `kinesis:PutRecords` on the stream and, when the stream is encrypted
 * with a customer-managed key, `kms:GenerateDataKey` on that key for this
 * stream only. With the AWS-managed key (alias/aws/kinesis) Kinesis needs no
 * KMS permission from producers.
 */
export function producerStatements(stream: kinesis.IStream): iam.PolicyStatement[] {
  const statements = [
    new iam.PolicyStatement({
      effect: iam.Effect.ALLOW,
      actions: ['kinesis:PutRecords'],
      resources: [stream.streamArn],
    }),
  ];
  if (stream.encryptionKey) {
    statements.push(
      new iam.PolicyStatement({
        effect: iam.Effect.ALLOW,
        actions: ['kms:GenerateDataKey'],
        resources: [stream.encryptionKey.keyArn],
        // Kinesis passes the stream ARN as encryption context on every KMS call.
        conditions: { StringEquals: { 'kms:EncryptionContext:aws:kinesis:arn': stream.streamArn } },
      }),
    );
  }
  return statements;
}

/** The extension's environment variables for these options (without the stream). */
export function extensionEnvironment(opts: KinesisTelemetryExtensionOptions): Record<string, string> {
  const env: Record<string, string> = {};
  const int = (name: string, v: number, lo: number, hi: number, unit = '') => {
    if (!Token.isUnresolved(v) && (!Number.isInteger(v) || v < lo || v > hi)) {
      throw new Error(`${name} must be a whole number from ${lo} to ${hi}${unit}, got ${v}${unit}`);
    }
    env[name] = Token.isUnresolved(v) ? Token.asString(v) : String(v);
  };
  const ms = (name: string, d: Duration | undefined, lo: number, hi: number) => {
    if (d !== undefined) int(name, d.toMilliseconds(), lo, hi, ' ms');
  };
  const bytes = (name: string, s: Size | undefined, lo: number, hi: number) => {
    if (s !== undefined) int(name, s.toBytes(), lo, hi, ' bytes');
  };
  if (opts.types !== undefined) {
    if (opts.types.length === 0) throw new Error('types must name at least one of platform, function, extension');
    env.KTE_TYPES = [...new Set(opts.types)].join(',');
  }
  if (opts.flush) env.KTE_FLUSH = opts.flush.value;
  ms('KTE_FLUSH_WAIT_MS', opts.flushWait, 0, 900000);
  ms('KTE_FLUSH_TIMEOUT_MS', opts.flushTimeout, 50, 900000);
  if (opts.partitionKey) env.KTE_PARTITION_KEY = opts.partitionKey;
  bytes('KTE_MAX_BUFFER_BYTES', opts.maxBufferBytes, 1048576, 1073741824);
  if (opts.overflow) env.KTE_OVERFLOW = opts.overflow;
  ms('KTE_BUFFER_TIMEOUT_MS', opts.bufferTimeout, 25, 30000);
  bytes('KTE_BUFFER_MAX_BYTES', opts.bufferMaxBytes, 262144, 1048576);
  if (opts.bufferMaxItems !== undefined) int('KTE_BUFFER_MAX_ITEMS', opts.bufferMaxItems, 1000, 10000);
  bytes('KTE_MAX_RECORD_BYTES', opts.maxRecordBytes, 1024, 1048576);
  bytes('KTE_MAX_BODY_BYTES', opts.maxBodyBytes, 1048576, 67108864);
  ms('KTE_CONNECT_TIMEOUT_MS', opts.connectTimeout, 10, 60000);
  ms('KTE_REQUEST_TIMEOUT_MS', opts.requestTimeout, 100, 300000);
  if (opts.logLevel) env.KTE_LOG_LEVEL = opts.logLevel;
  if (opts.endpoint !== undefined) {
    if (!Token.isUnresolved(opts.endpoint) && !/^https?:\/\/[^/]/.test(opts.endpoint)) {
      throw new Error(`endpoint must start with https:// (or http:// for a local endpoint), got '${opts.endpoint}'`);
    }
    env.KTE_ENDPOINT = opts.endpoint;
  }
  return env;
}

/**
 * Attaches kinesis-telemetry-extension to a Lambda function: adds the layer
 * for the function's architecture, sets `KTE_STREAM_ARN` (or
 * `KTE_STREAM_NAME`) and the other `KTE_*` settings given, and grants the
 * function's role exactly what the extension calls (see `producerStatements`).
 *
 * ```ts
 * new KinesisTelemetryExtension(this, 'Telemetry', { function: fn, stream, layers });
 * ```
 */
export class KinesisTelemetryExtension extends Construct {
  /** The layer that was added. */
  readonly layer: lambda.ILayerVersion;
  /** The function's architecture, as the layer names it. */
  readonly architecture: ExtensionArchitecture;
  /** The environment variables that were set. */
  readonly environment: Readonly<Record<string, string>>;
  /** The statements granted to the function's role (empty when `grantPermissions` is false). */
  readonly statements: readonly iam.PolicyStatement[];

  constructor(scope: Construct, id: string, props: KinesisTelemetryExtensionProps) {
    super(scope, id);
    const fn = props.function;
    const archName = fn.architecture.name;
    if (archName !== 'x86_64' && archName !== 'arm64') {
      throw new Error(`${fn.node.path}: architecture '${archName}' has no kinesis-telemetry-extension build`);
    }
    this.architecture = archName;
    if ((props.layers === undefined) === (props.layerArns === undefined)) {
      throw new Error('KinesisTelemetryExtension: give either layers or layerArns');
    }
    const arn = props.layerArns?.[archName];
    const layer = props.layers
      ? props.layers[archName]
      : arn !== undefined
        ? lambda.LayerVersion.fromLayerVersionArn(this, 'Layer', arn)
        : undefined;
    if (!layer) {
      throw new Error(
        `${fn.node.path} runs on ${archName} but no ${archName} layer was given to KinesisTelemetryExtension`,
      );
    }
    this.layer = layer;
    fn.addLayers(layer);

    const env: Record<string, string> = {};
    if ((props.streamReference ?? StreamReference.ARN) === StreamReference.ARN) {
      env.KTE_STREAM_ARN = props.stream.streamArn;
    } else {
      env.KTE_STREAM_NAME = props.stream.streamName;
    }
    Object.assign(env, extensionEnvironment(props));
    for (const [k, v] of Object.entries(env)) fn.addEnvironment(k, v);
    this.environment = env;

    const statements = props.grantPermissions === false ? [] : producerStatements(props.stream);
    for (const s of statements) {
      iam.Grant.addToPrincipal({
        grantee: fn,
        actions: s.actions,
        resourceArns: s.resources,
        conditions: s.conditions as Record<string, Record<string, unknown>> | undefined,
      });
    }
    this.statements = statements;
  }
}
