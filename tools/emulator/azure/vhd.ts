/** The 512-byte footer at the end of every VHD, and what Azure requires of it. */

export const FOOTER_SIZE = 512;
const MIB = 1024 * 1024;

/** VHD disk types (footer offset 60, big-endian). */
export const DISK_TYPE = { fixed: 2, dynamic: 3, differencing: 4 } as const;

export interface VhdProblem {
  code: string;
  message: string;
}

/**
 * Why Azure would refuse a blob of `blobSize` bytes ending with `footer` as an image source, or undefined.
 * Azure takes fixed VHDs only, whose virtual size (the blob less its footer) is a whole number of MiB;
 * the messages are those Azure gives where they are known.
 */
export function vhdProblem(footer: Buffer, blobSize: number, uri: string): VhdProblem | undefined {
  const name = uri.slice(uri.lastIndexOf('/') + 1);
  if (footer.length !== FOOTER_SIZE || footer.subarray(0, 8).toString('latin1') !== 'conectix') {
    return {
      code: 'InvalidVhd',
      message:
        `The specified cookie value in VHD footer indicates that disk '${name}' with blob ${uri} is not a ` +
        "supported VHD. Disk is expected to have cookie value 'conectix'.",
    };
  }
  const type = footer.readUInt32BE(60);
  if (type !== DISK_TYPE.fixed) {
    const label =
      type === DISK_TYPE.dynamic
        ? 'Dynamic'
        : type === DISK_TYPE.differencing
          ? 'Differencing'
          : String(type);
    return {
      code: 'InvalidVhd',
      message: `The VHD ${uri} is of disk type '${label}'. Only fixed VHDs are supported.`,
    };
  }
  const virtualSize = blobSize - FOOTER_SIZE;
  if (virtualSize <= 0 || virtualSize % MIB !== 0) {
    return {
      code: 'InvalidVhd',
      message: `The VHD ${uri} has an unsupported virtual size of ${virtualSize} bytes. The size must be a whole number (in MBs).`,
    };
  }
  const current = Number(footer.readBigUInt64BE(48));
  if (current !== virtualSize) {
    return {
      code: 'InvalidVhd',
      message: `The VHD ${uri} footer gives a current size of ${current} bytes, but the blob holds ${virtualSize} bytes before its footer.`,
    };
  }
  return undefined;
}

/** A valid fixed-VHD footer for a disk of `virtualSize` bytes (checksum included): what qemu-img writes. */
export function fixedVhdFooter(
  virtualSize: number,
  diskType: number = DISK_TYPE.fixed,
  cookie = 'conectix',
): Buffer {
  const f = Buffer.alloc(FOOTER_SIZE);
  f.write(cookie.padEnd(8, '\0').slice(0, 8), 0, 'latin1');
  f.writeUInt32BE(2, 8); // features: reserved bit set
  f.writeUInt32BE(0x00010000, 12); // file format version 1.0
  f.writeBigUInt64BE(diskType === DISK_TYPE.fixed ? 0xffffffffffffffffn : 512n, 16); // data offset
  f.writeUInt32BE(Math.floor((Date.now() - Date.UTC(2000, 0, 1)) / 1000), 24);
  f.write('qemu', 28, 'latin1');
  f.writeUInt32BE(0x00050003, 32);
  f.write('Wi2k', 36, 'latin1');
  f.writeBigUInt64BE(BigInt(virtualSize), 40); // original size
  f.writeBigUInt64BE(BigInt(virtualSize), 48); // current size
  f.writeUInt32BE(0xffff10ff, 56); // geometry as qemu writes it for large disks
  f.writeUInt32BE(diskType, 60);
  let sum = 0;
  for (const byte of f) sum += byte;
  f.writeUInt32BE(~sum >>> 0, 64);
  return f;
}
