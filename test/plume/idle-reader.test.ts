import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { readBlocks } from '../../src/plume/source/block-reader.js';
import type { BlockStats } from '../../src/plume/source/blocks.js';
import { decompressToFd } from '../../src/plume/source/decompress.js';

/**
 * Issue 13, item 5: while the download is slow the decompressor has nothing to write, and the paced block
 * reader used to nap a few hundredths of a millisecond at a time, for as long as the download took (23 % of
 * a core at 1 byte/s). Here a real xz child is fed half an image, then nothing for two seconds, then the
 * rest; the reader counts the reads that found its pipe empty.
 */
describe('the block reader is idle while the download is', () => {
  it('backs off while the pipe stays empty, and still reads every byte', async () => {
    const raw = Buffer.concat([randomBytes(3 * 2 ** 20), Buffer.alloc(2 ** 20)]);
    const xz = execFileSync('xz', ['-1', '-T1', '-c'], { input: raw, maxBuffer: 2 ** 26 });
    const half = Math.floor(xz.length / 2);
    async function* slowDownload(): AsyncGenerator<Buffer> {
      yield xz.subarray(0, half);
      await sleep(2000);
      yield xz.subarray(half);
    }
    const pipe = await decompressToFd(slowDownload(), 'xz', true);
    expect(pipe, 'a FIFO could be made').toBeDefined();
    expect(pipe!.paced).toBe(true);
    const stats: BlockStats = { bytes: 0, blocks: 0, zeroBlocks: 0 };
    let dataBlocks = 0;
    for await (const block of readBlocks(pipe!, 512 * 1024, 2 ** 30, stats)) {
      dataBlocks++;
      block.release?.();
    }
    expect(stats.bytes).toBe(raw.length);
    expect(dataBlocks).toBe(6);
    expect(stats.zeroBlocks).toBe(2);
    // Two seconds of an empty pipe: a busy-waiting reader looks thousands of times (one look per ~0.1 ms
    // nap); one that backs off to 25 ms naps looks about 64 + 10 + 80 times.
    expect(stats.emptyReads).toBeGreaterThan(0);
    expect(stats.emptyReads).toBeLessThan(600);
  });
});
