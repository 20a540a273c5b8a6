import { PlumeError } from '../../shared/errors.js';
import { splitBlocks, type Block, type BlockStats } from './blocks.js';
import { hashing, verifyDigest } from './checksum.js';
import { readBlocks } from './block-reader.js';
import { decompress, decompressToFd, type Compression } from './decompress.js';
import { probeSource, readRange, streamSource, type SourceInfo } from './fetch.js';
import type { SourcePolicy } from './policy.js';
import { xzIndex } from './xz-index.js';
import { xzTail } from './xz-tail.js';

export const GiB = 2 ** 30;

/** What the plan knows about the image before touching it. */
export interface ImageSpec {
  url: URL;
  compression: Compression;
  /** Expected sha256 of the file as fetched (compressed), from compose metadata. */
  sha256?: string;
  /** Volume size to use when the raw size cannot be read from the file (bzip2 has no index). */
  fallbackVolumeGiB?: number;
  /** Smallest volume to create, whatever the image size. */
  minVolumeGiB?: number;
  /** A fixed volume size (configured); an image that does not fit is refused before upload. */
  volumeGiB?: number;
  /** Least data an image must hold (bytes in blocks that are not all zeros): checked before anything is made from it. */
  minDataBytes?: number;
  /** Largest volume allowed (policy): a bigger one is refused before any snapshot is started. */
  maxVolumeGiB?: number;
}

const MiB = 2 ** 20;
const size = (bytes: number) =>
  bytes >= GiB
    ? `${(bytes / GiB).toFixed(2)} GiB`
    : bytes >= MiB
      ? `${(bytes / MiB).toFixed(1)} MiB`
      : `${bytes} bytes`;

/** An image holding less data than the policy asks is a broken build: refuse it with one line. Pure. */
export function checkImageData(dataBytes: number, minDataBytes: number | undefined, what: string): void {
  if (minDataBytes === undefined || dataBytes >= minDataBytes) return;
  throw new PlumeError(
    'input',
    `${what} holds ${dataBytes === 0 ? 'no data' : `only ${size(dataBytes)} of data`} (all zeros or empty), less than the ${size(minDataBytes)} an image must have; nothing was registered`,
    'check the build that made it (or lower [images] min_data_mib for this system)',
  );
}

/** A volume bigger than the policy allows is refused before any snapshot exists. Pure. */
export function checkVolumeSize(volumeGiB: number, maxVolumeGiB: number | undefined, what: string): void {
  if (maxVolumeGiB === undefined || volumeGiB <= maxVolumeGiB) return;
  throw new PlumeError(
    'input',
    `${what} needs a ${volumeGiB} GiB volume, more than the ${maxVolumeGiB} GiB allowed; nothing was created`,
    'check the image (a small file that decompresses to this much is a decompression bomb), or raise [images] max_volume_gib for this system',
  );
}

export interface ReadSummary extends BlockStats {
  sha256: string;
  compressedBytes: number;
}

export interface ReadOptions {
  /**
   * For a provider that sizes its disk from the stream itself when `rawBytes` is unknown (Azure's page
   * blob, created at the bound and cut to the stream's length at its end): the stream is held to
   * `maxDiskBytes` plus this many bytes of format trailer (a VHD's 512-byte footer) instead of to the
   * volume, and refused past that as the policy's decompression-bomb limit.
   */
  trailerBytes?: number;
}

/** An opened disk image: its sizes are known, its blocks can be read once. */
export interface DiskImage {
  info: SourceInfo;
  /** Exact raw size when the format records it (xz), else undefined. */
  rawBytes: number | undefined;
  volumeGiB: number;
  /**
   * The largest disk the policy allows (`[images] max_volume_gib`; the volume where no policy is given): the
   * upper bound of an image whose size is unknown until it has been read (bzip2), for a provider that
   * sizes its disk from the stream (see ReadOptions.trailerBytes).
   */
  maxDiskBytes: number;
  /**
   * Read the image as blocks of `blockSize`, dropping all-zero ones. `finish()`, called after the blocks
   * are consumed, checks the checksum and sizes: nothing may be committed before it resolves.
   */
  read(
    blockSize: number,
    signal?: AbortSignal,
    opts?: ReadOptions,
  ): { blocks: AsyncGenerator<Block>; stats: BlockStats; finish(): ReadSummary };
  /**
   * The file as fetched, still compressed, for providers that upload it as it is (GCE's tarball): `finish()`,
   * called after the last chunk, checks the checksum and the size; nothing may be committed before it.
   */
  file(signal?: AbortSignal): { chunks: AsyncGenerator<Buffer>; finish(): { sha256: string; bytes: number } };
  /**
   * The raw image's last `bytes` bytes, read ahead of the rest where the file allows it (uncompressed, or an
   * xz of several blocks): undefined otherwise. Unchecked (the checksum covers the whole file): for a
   * provider to refuse a wrong file early (Azure's VHD footer), never to commit anything.
   */
  tail(bytes: number, signal?: AbortSignal): Promise<Buffer | undefined>;
}

export async function openImage(
  spec: ImageSpec,
  policy: SourcePolicy,
  signal?: AbortSignal,
): Promise<DiskImage> {
  const info = await probeSource(spec.url, policy, signal);
  let rawBytes: number | undefined;
  let compressedBlocks: number | undefined;
  if (spec.compression === 'none') rawBytes = info.size;
  else if (spec.compression === 'xz' && info.size !== undefined && info.ranges)
    ({ uncompressed: rawBytes, blocks: compressedBlocks } = await xzIndex(info.size, (offset, length) =>
      readRange(info, policy, offset, length, signal),
    ));
  let volumeGiB: number;
  if (spec.volumeGiB !== undefined) {
    if (rawBytes !== undefined && rawBytes > spec.volumeGiB * GiB)
      throw new PlumeError(
        'input',
        `the image is ${(rawBytes / GiB).toFixed(2)} GiB raw, larger than its ${spec.volumeGiB} GiB volume`,
        'raise the volume size in the config, or check that this is the right image',
      );
    volumeGiB = spec.volumeGiB;
  } else if (rawBytes !== undefined) volumeGiB = Math.max(Math.ceil(rawBytes / GiB), spec.minVolumeGiB ?? 1);
  else if (spec.fallbackVolumeGiB) volumeGiB = spec.fallbackVolumeGiB;
  else
    throw new PlumeError(
      'source',
      `cannot tell the image size of ${info.url.href} before reading it`,
      'serve it with byte ranges, or configure a volume size for this system',
    );
  checkVolumeSize(volumeGiB, spec.maxVolumeGiB, info.url.href);
  // Known before reading: a raw size below the minimum cannot hold enough data.
  if (rawBytes !== undefined) checkImageData(rawBytes, spec.minDataBytes, info.url.href);

  const maxDiskBytes = (spec.maxVolumeGiB ?? volumeGiB) * GiB;

  return {
    info,
    rawBytes,
    volumeGiB,
    maxDiskBytes,
    async tail(bytes, readSignal) {
      const s = readSignal ?? signal;
      if (info.size === undefined || !info.ranges || info.size < bytes) return undefined;
      const size = info.size;
      if (spec.compression === 'none') return readRange(info, policy, size - bytes, bytes, s);
      if (spec.compression === 'xz' && compressedBlocks !== undefined && compressedBlocks > 1)
        return xzTail(size, (offset, length) => readRange(info, policy, offset, length, s), bytes);
      return undefined;
    },
    file(readSignal) {
      const { chunks, digest } = hashing(streamSource(info, policy, readSignal ?? signal));
      return {
        chunks,
        finish() {
          if (spec.sha256) verifyDigest(digest.hex(), spec.sha256, info.url.href);
          if (info.size !== undefined && digest.bytes !== info.size)
            throw new PlumeError(
              'source',
              `read ${digest.bytes} bytes of ${info.url.href}, expected ${info.size}`,
              'run again',
            );
          return { sha256: digest.hex(), bytes: digest.bytes };
        },
      };
    },
    read(blockSize, readSignal, readOpts = {}) {
      const stats: BlockStats = { bytes: 0, blocks: 0, zeroBlocks: 0 };
      const { chunks, digest } = hashing(streamSource(info, policy, readSignal ?? signal));
      const what = info.url.href;
      const checkDigest = () => {
        if (spec.sha256) verifyDigest(digest.hex(), spec.sha256, what);
      };
      const trailer = readOpts.trailerBytes;
      const maxBytes = trailer === undefined ? volumeGiB * GiB : maxDiskBytes + trailer;
      // A stream sized by its own end has only the policy's bound: passing it is a decompression bomb (or
      // an image bigger than the policy allows), refused before anything is registered.
      const tooLarge =
        trailer === undefined
          ? undefined
          : () =>
              new PlumeError(
                'input',
                `${what} decompresses to more than ${size(maxDiskBytes)}${trailer ? ` plus its ${trailer}-byte trailer` : ''}, the largest disk ${spec.maxVolumeGiB !== undefined ? '[images] max_volume_gib' : 'its volume size'} allows; nothing was registered`,
                'check the image (a small file that decompresses to this much is a decompression bomb), or raise [images] max_volume_gib for this system',
              );
      async function* raw(): AsyncGenerator<Block> {
        if (spec.compression === 'none') {
          yield* splitBlocks(chunks, blockSize, maxBytes, stats, tooLarge);
          return;
        }
        // Decompressed output read off the main thread; the plain stream where no FIFO can be made. Only a
        // multi-block xz is decoded on several threads; anything else has one thread decode and write.
        const paced = !(compressedBlocks !== undefined && compressedBlocks > 1);
        const pipe = await decompressToFd(chunks, spec.compression, paced);
        if (pipe) yield* readBlocks(pipe, blockSize, maxBytes, stats, 8, tooLarge);
        else yield* splitBlocks(decompress(chunks, spec.compression), blockSize, maxBytes, stats, tooLarge);
      }
      const checkDeclared = () => {
        if (rawBytes !== undefined && spec.compression !== 'none' && stats.bytes > rawBytes)
          throw new PlumeError(
            'input',
            `the image decompresses to more than the ${rawBytes} bytes its xz index declares`,
            'the file is corrupt or not what its metadata says; nothing was registered',
          );
      };
      async function* blocks(): AsyncGenerator<Block> {
        try {
          // The volume was sized from the xz index before the first block was sent. A stream that
          // decodes to more than the index declares is lying about itself: stop at the first byte past
          // the declared size rather than upload the rest (xz itself would only notice at the end).
          for await (const block of raw()) {
            checkDeclared();
            yield block;
          }
          checkDeclared();
        } catch (err) {
          // A file that differs from its metadata is the root cause of a corrupt stream: say so first.
          if (info.size !== undefined && digest.bytes === info.size) checkDigest();
          throw err;
        }
      }
      return {
        blocks: blocks(),
        stats,
        finish() {
          checkDigest();
          if (info.size !== undefined && digest.bytes !== info.size)
            throw new PlumeError(
              'source',
              `read ${digest.bytes} bytes of ${what}, expected ${info.size}`,
              'run again',
            );
          if (rawBytes !== undefined && spec.compression !== 'none' && stats.bytes !== rawBytes)
            throw new PlumeError(
              'input',
              `the image decompressed to ${stats.bytes} bytes but its index says ${rawBytes}`,
              'the file is corrupt',
            );
          // The blocks that carry data are what a snapshot holds; an image of zeros makes an empty disk.
          checkImageData((stats.blocks - stats.zeroBlocks) * blockSize, spec.minDataBytes, what);
          return { ...stats, sha256: digest.hex(), compressedBytes: digest.bytes };
        },
      };
    },
  };
}
