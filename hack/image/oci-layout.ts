// Writes an OCI image layout (image-spec v1.1: oci-layout, index.json, blobs/sha256/...) from gzip-compressed layer
// tarballs, for hack/image/build.sh. Every file's content follows from the arguments alone (no clock, no host name),
// so the same layers and arguments give the same digests. Prints the manifest's digest.
//
//   tsx hack/image/oci-layout.ts --layout DIR --ref docker.io/library/tern:0.1.0 --created EPOCH
//     --layer L1.tar.gz --diff-id sha256:... --history 'what made it' [--layer ... (in order, base first)]
//     [--label key=value ...] [--env NAME=value ...] [--workdir /app]
import { createHash } from 'node:crypto';
import { copyFileSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
}

const MEDIA = {
  index: 'application/vnd.oci.image.index.v1+json',
  manifest: 'application/vnd.oci.image.manifest.v1+json',
  config: 'application/vnd.oci.image.config.v1+json',
  layer: 'application/vnd.oci.image.layer.v1.tar+gzip',
};
const PLATFORM = { architecture: 'amd64', os: 'linux' };

function die(message: string): never {
  process.stderr.write(`oci-layout: ${message}\n`);
  process.exit(2);
}

function keyValues(pairs: string[], what: string): Record<string, string> {
  return Object.fromEntries(
    pairs.map((pair) => {
      const at = pair.indexOf('=');
      if (at <= 0) die(`${what} ${JSON.stringify(pair)} is not key=value`);
      return [pair.slice(0, at), pair.slice(at + 1)];
    }),
  );
}

/** Stores bytes as a blob and returns its descriptor. */
function writeBlob(layout: string, mediaType: string, bytes: Buffer): Descriptor {
  const hex = createHash('sha256').update(bytes).digest('hex');
  writeFileSync(join(layout, 'blobs/sha256', hex), bytes);
  return { mediaType, digest: `sha256:${hex}`, size: bytes.length };
}

/** Copies a file in as a blob. */
function copyBlob(layout: string, mediaType: string, file: string): Descriptor {
  const bytes = readFileSync(file);
  const hex = createHash('sha256').update(bytes).digest('hex');
  copyFileSync(file, join(layout, 'blobs/sha256', hex));
  return { mediaType, digest: `sha256:${hex}`, size: statSync(file).size };
}

const json = (value: unknown) => Buffer.from(JSON.stringify(value));

function main(): void {
  const { values } = parseArgs({
    options: {
      layout: { type: 'string' },
      ref: { type: 'string' },
      created: { type: 'string' },
      layer: { type: 'string', multiple: true, default: [] },
      'diff-id': { type: 'string', multiple: true, default: [] },
      history: { type: 'string', multiple: true, default: [] },
      label: { type: 'string', multiple: true, default: [] },
      env: { type: 'string', multiple: true, default: [] },
      workdir: { type: 'string', default: '/' },
    },
  });
  const { layout, ref, created: createdEpoch } = values;
  if (!layout || !ref || !createdEpoch) die('--layout, --ref and --created are required');
  const layers = values.layer!;
  const diffIds = values['diff-id']!;
  const history = values.history!;
  if (layers.length === 0 || diffIds.length !== layers.length || history.length !== layers.length)
    die('give each --layer its --diff-id and --history, in order');
  for (const diffId of diffIds) if (!/^sha256:[0-9a-f]{64}$/.test(diffId)) die(`bad --diff-id ${diffId}`);
  if (!/^\d+$/.test(createdEpoch)) die(`--created ${createdEpoch} is not seconds since the epoch`);
  const created = new Date(Number(createdEpoch) * 1000).toISOString().replace('.000Z', 'Z');
  const labels = keyValues(values.label!, '--label');
  const env = keyValues(values.env!, '--env');

  rmSync(layout, { recursive: true, force: true });
  mkdirSync(join(layout, 'blobs/sha256'), { recursive: true });
  const layerDescriptors = layers.map((file) => copyBlob(layout, MEDIA.layer, file));
  const config = writeBlob(
    layout,
    MEDIA.config,
    json({
      created,
      ...PLATFORM,
      // No Entrypoint or Cmd: the chart gives each container its program's command.
      config: {
        Env: Object.entries(env).map(([name, value]) => `${name}=${value}`),
        WorkingDir: values.workdir,
        Labels: labels,
      },
      rootfs: { type: 'layers', diff_ids: diffIds },
      history: history.map((createdBy) => ({ created, created_by: createdBy })),
    }),
  );
  const manifest = writeBlob(
    layout,
    MEDIA.manifest,
    json({
      schemaVersion: 2,
      mediaType: MEDIA.manifest,
      config,
      layers: layerDescriptors,
      annotations: { 'org.opencontainers.image.created': created, ...labels },
    }),
  );
  writeFileSync(join(layout, 'oci-layout'), json({ imageLayoutVersion: '1.0.0' }));
  writeFileSync(
    join(layout, 'index.json'),
    json({
      schemaVersion: 2,
      mediaType: MEDIA.index,
      manifests: [
        {
          ...manifest,
          platform: PLATFORM,
          // containerd (`ctr images import`) names the image after io.containerd.image.name; other tools (skopeo,
          // umoci) read the OCI ref name. Both hold the full reference the kubelet asks for.
          annotations: { 'io.containerd.image.name': ref, 'org.opencontainers.image.ref.name': ref },
        },
      ],
    }),
  );
  process.stdout.write(`${manifest.digest}\n`);
}

main();
