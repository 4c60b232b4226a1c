// What a CDK app imports to use kinesis-telemetry-extension.
export * from './extension';
export * from './layers';
export { KinesisTelemetryExtensionStack, KinesisTelemetryExtensionStackProps, StreamKey } from './stack';
export { listZipEntries, ZipEntry } from './zip';
