// One set of proto-loader options, used both to generate the types (proto/generate.ts) and to load the
// .proto files at runtime (proto/load.ts): the generated `__Output` types are only true if both agree.
//
// - keepCase false: fields are camelCase in TypeScript (memory_mib → memoryMib).
// - longs Number: 64-bit fields arrive as JS numbers. Every 64-bit quantity in these APIs (MiB, bytes, counts)
//   stays far below 2^53, and numbers keep arithmetic and JSON plain.
// - enums String: enum fields arrive as their names ('GUEST_PHASE_RUNNING'), readable in logs.
// - defaults/arrays/objects: omitted fields arrive as their proto3 defaults, so `__Output` fields are non-optional.
// - oneofs: a virtual field names the member that is set.
export const protoLoaderOptions = {
  keepCase: false,
  longs: Number,
  enums: String,
  defaults: true,
  arrays: true,
  objects: true,
  oneofs: true,
} as const;

/** The same options as proto-loader-gen-types command-line flags. */
export const protoGenTypesFlags = [
  '--longs=Number',
  '--enums=String',
  '--defaults',
  '--arrays',
  '--objects',
  '--oneofs',
  '--includeComments',
  '--grpcLib=@grpc/grpc-js',
  '--importFileExtension=.js',
];
