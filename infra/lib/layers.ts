import * as fs from 'fs';
import * as path from 'path';
import { RemovalPolicy } from 'aws-cdk-lib';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as ssm from 'aws-cdk-lib/aws-ssm';
import { Construct } from 'constructs';
import { listZipEntries } from './zip';

/** Where the extension's executable sits inside the layer zip (Lambda runs every file in /opt/extensions). */
export const EXTENSION_ENTRY = 'extensions/kinesis-telemetry-extension';

/** The two architectures the extension is built for. */
export type ExtensionArchitecture = 'x86_64' | 'arm64';
export const EXTENSION_ARCHITECTURES: readonly ExtensionArchitecture[] = ['x86_64', 'arm64'];

/**
 * The extension's layer for each architecture. A function gets the one
 * matching its own architecture; one that is missing is an error only for a
 * function that needs it.
 */
export interface ExtensionLayers {
  readonly x86_64?: lambda.ILayerVersion;
  readonly arm64?: lambda.ILayerVersion;
}

/** Paths of the layer zips made by `make layer`, one per architecture. */
export interface LayerZipPaths {
  readonly x86_64: string;
  readonly arm64: string;
}

/** `build/layer-x86_64.zip` and `build/layer-arm64.zip` under `dir` (the repository's build directory). */
export function layerZipPaths(dir: string): LayerZipPaths {
  return {
    x86_64: path.join(dir, 'layer-x86_64.zip'),
    arm64: path.join(dir, 'layer-arm64.zip'),
  };
}

export function lambdaArchitecture(arch: ExtensionArchitecture): lambda.Architecture {
  return arch === 'arm64' ? lambda.Architecture.ARM_64 : lambda.Architecture.X86_64;
}

/**
 * Checks that `zip` is a usable layer zip for the extension: it exists, is a
 * ZIP archive, holds `extensions/kinesis-telemetry-extension` as a file and,
 * when the archive records Unix modes, that file is executable. Throws an
 * Error that says what to do otherwise.
 */
export function checkLayerZip(zip: string, arch: ExtensionArchitecture): void {
  if (!fs.existsSync(zip)) {
    throw new Error(
      `Layer zip for ${arch} not found: ${zip}. Run \`make layer\` in the repository root first ` +
        '(it writes build/layer-x86_64.zip and build/layer-arm64.zip), or point the app elsewhere with -c layerDir=DIR.',
    );
  }
  let entries;
  try {
    entries = listZipEntries(zip);
  } catch (e) {
    throw new Error(`Layer zip for ${arch} is unreadable: ${(e as Error).message}. Rebuild it with \`make layer\`.`);
  }
  const entry = entries.find((e) => e.name === EXTENSION_ENTRY);
  if (!entry) {
    throw new Error(
      `Layer zip ${zip} has no ${EXTENSION_ENTRY}; Lambda only starts extensions found in /opt/extensions. ` +
        'Rebuild it with `make layer`.',
    );
  }
  if (entry.unixMode !== undefined) {
    const type = entry.unixMode & 0o170000;
    if (type !== 0o100000 && type !== 0) {
      throw new Error(`Layer zip ${zip}: ${EXTENSION_ENTRY} is not a regular file. Rebuild it with \`make layer\`.`);
    }
    if ((entry.unixMode & 0o111) === 0) {
      throw new Error(
        `Layer zip ${zip}: ${EXTENSION_ENTRY} is not executable (mode ${(entry.unixMode & 0o7777).toString(8)}); ` +
          'Lambda could not start it. Rebuild it with `make layer`.',
      );
    }
  }
}

export interface KinesisTelemetryExtensionLayersProps {
  /** The layer zips, one per architecture (see `layerZipPaths`). Each is checked with `checkLayerZip`. */
  readonly zips: LayerZipPaths;
  /** Layer name prefix; the architecture is appended (`<prefix>-x86_64`). @default 'kinesis-telemetry-extension' */
  readonly layerNamePrefix?: string;
  /** Extra text for the layers' description. @default none */
  readonly description?: string;
  /**
   * What happens to a layer version when it is replaced or the stack is
   * deleted. Kept by default: functions in other stacks may have been deployed
   * with its ARN (from SSM) and a deleted version can no longer be added to a
   * function. @default RemovalPolicy.RETAIN
   */
  readonly removalPolicy?: RemovalPolicy;
}

/**
 * One Lambda LayerVersion per architecture from the zips `make layer` builds.
 * Each is compatible with its one architecture and with every runtime (the
 * extension is a static executable, so `compatibleRuntimes` is left unset).
 */
export class KinesisTelemetryExtensionLayers extends Construct implements ExtensionLayers {
  /** SSM parameter holding a layer version ARN for `arch` under `prefix`. */
  static parameterName(prefix: string, arch: ExtensionArchitecture): string {
    return `${prefix}/layer/${arch}/arn`;
  }

  /** Layers from known layer version ARNs (for instance published by another account). */
  static fromLayerVersionArns(
    scope: Construct,
    id: string,
    arns: { readonly x86_64?: string; readonly arm64?: string },
  ): ExtensionLayers {
    const holder = new Construct(scope, id);
    return {
      x86_64: arns.x86_64 ? lambda.LayerVersion.fromLayerVersionArn(holder, 'x86_64', arns.x86_64) : undefined,
      arm64: arns.arm64 ? lambda.LayerVersion.fromLayerVersionArn(holder, 'arm64', arns.arm64) : undefined,
    };
  }

  /**
   * Layers whose ARNs the stack of this app published to SSM under `prefix`
   * (default `/kinesis-telemetry-extension`), in the same account and region.
   * The values are resolved by CloudFormation at deploy time (template
   * parameters of type `AWS::SSM::Parameter::Value<String>`): no lookup at synth.
   */
  static fromSsmParameters(scope: Construct, id: string, prefix = '/kinesis-telemetry-extension'): ExtensionLayers {
    const holder = new Construct(scope, id);
    // Made on first use, so that only the parameter of an architecture in use
    // ends up in the template.
    const made: { [arch: string]: lambda.ILayerVersion } = {};
    const layer = (arch: ExtensionArchitecture) =>
      (made[arch] ??= lambda.LayerVersion.fromLayerVersionArn(
        holder,
        arch,
        ssm.StringParameter.valueForStringParameter(holder, KinesisTelemetryExtensionLayers.parameterName(prefix, arch)),
      ));
    return {
      get x86_64() {
        return layer('x86_64');
      },
      get arm64() {
        return layer('arm64');
      },
    };
  }

  readonly x86_64: lambda.LayerVersion;
  readonly arm64: lambda.LayerVersion;

  constructor(scope: Construct, id: string, props: KinesisTelemetryExtensionLayersProps) {
    super(scope, id);
    const prefix = props.layerNamePrefix ?? 'kinesis-telemetry-extension';
    const make = (arch: ExtensionArchitecture): lambda.LayerVersion => {
      const zip = path.resolve(props.zips[arch]);
      checkLayerZip(zip, arch);
      const layer = new lambda.LayerVersion(this, arch, {
        layerVersionName: `${prefix}-${arch}`,
        description:
          `kinesis-telemetry-extension for ${arch}: ships Lambda Telemetry API events to Kinesis` +
          (props.description ? ` (${props.description})` : ''),
        code: lambda.Code.fromAsset(zip),
        compatibleArchitectures: [lambdaArchitecture(arch)],
        removalPolicy: props.removalPolicy ?? RemovalPolicy.RETAIN,
      });
      return layer;
    };
    this.x86_64 = make('x86_64');
    this.arm64 = make('arm64');
  }
}
