import { chmodSync, existsSync, statSync } from 'node:fs';
import { PlumeError, type ErrorKind } from './errors.js';

/**
 * Refuse a file of credentials that others could read or change: keys in it are as good as leaked, and a
 * settings file others can write can run their code. Group access is accepted only the way a deployment
 * grants it to a service (root owns the file, the group is the process's own: deploy/ansible writes
 * root:joystick 0640 for User=joystick). `missingOk`: a default location that need not exist.
 */
export function checkSecretFile(
  path: string,
  what: string,
  opts: { kind?: ErrorKind; missingOk?: boolean } = {},
): void {
  const kind = opts.kind ?? 'credentials';
  let st;
  try {
    st = statSync(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' && opts.missingOk) return;
    throw new PlumeError(
      kind,
      `cannot read ${what} ${path}: ${code === 'ENOENT' ? 'no such file' : (err as Error).message}`,
    );
  }
  const mode = st.mode & 0o777;
  const groupOk = st.uid === 0 && typeof process.getgid === 'function' && st.gid === process.getgid();
  if ((mode & 0o007) !== 0 || ((mode & 0o070) !== 0 && !groupOk))
    throw new PlumeError(
      kind,
      `refusing ${what} ${path}: its mode ${mode.toString(8).padStart(4, '0')} lets group or others read it`,
      `chmod 600 ${path}`,
    );
}

/**
 * Make an SQLite database readable by its owner only, with its `-wal` and `-shm` files (SQLite gives them
 * the database file's mode when it makes them): plume's and joystick's hold resumable upload session URIs,
 * which let whoever reads them write the staged object. A file owned by someone else is left as it is.
 */
export function keepSqlitePrivate(path: string): void {
  if (path === ':memory:') return;
  for (const f of [path, `${path}-wal`, `${path}-shm`])
    try {
      if (existsSync(f)) chmodSync(f, 0o600);
    } catch {
      // Not the owner (a shared database that `plume status` reads): its owner keeps it private.
    }
}
