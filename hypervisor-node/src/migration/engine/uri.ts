// Migration URIs the engine hands to QEMU: only `unix:<absolute path>` of plain characters. The path reaches QEMU
// as a JSON string (never through its option parser), but it is still kept to characters that cannot surprise
// QEMU's URI parsing, and short enough for a unix socket address.
const UNIX_URI = /^unix:(\/[A-Za-z0-9._/-]+)$/;
/** sun_path is 108 bytes including the NUL. */
const MAX_SOCKET_PATH = 107;

/** Returns the socket path of a `unix:<path>` migration URI, or throws saying what is wrong with it. */
export function assertUnixMigrationUri(uri: string): string {
  const match = UNIX_URI.exec(uri);
  if (match === null || match[1]!.split('/').includes('..')) {
    throw new Error(
      `migration URI ${JSON.stringify(uri)} must be unix:<absolute path> of letters, digits, ".", "_", "-", "/"`,
    );
  }
  const socketPath = match[1]!;
  if (Buffer.byteLength(socketPath) > MAX_SOCKET_PATH) {
    throw new Error(`migration socket path ${socketPath} is longer than ${MAX_SOCKET_PATH} bytes`);
  }
  return socketPath;
}
