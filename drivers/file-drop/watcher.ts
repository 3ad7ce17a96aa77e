// Which files of the folder are complete, by polling: a scan lists the folder and stats the files
// that match, and a file is ready once its size and modification time have stayed the same for
// stable_for (or its ready marker exists). Polling, not change notifications: inotify does not see
// what another machine writes into a mounted share, and a scan costs little at a lab's file rates.
import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';

/** A glob of file names (`*`, `?`), matched without regard to case: instrument PCs run Windows. */
export function globMatcher(patterns: readonly string[]): (name: string) => boolean {
  const res = patterns.map(
    (p) =>
      new RegExp(
        `^${p
          .split('')
          .map((ch) => (ch === '*' ? '.*' : ch === '?' ? '.' : ch.replace(/[.+^${}()|[\]\\]/g, '\\$&')))
          .join('')}$`,
        'is',
      ),
  );
  return (name) => res.some((re) => re.test(name));
}

export interface FileState {
  name: string;
  path: string;
  size: number;
  mtimeMs: number;
}

interface Seen {
  size: number;
  mtimeMs: number;
  /** When this size and time were first seen. */
  since: number;
  /** When the file was first seen, whatever its size and time since. */
  first: number;
  /** Said to be changing still. */
  warned: boolean;
}

/** A file changing for this long (or ten stable_for, if longer) is said to be: its writer may never stop. */
export const NEVER_STABLE_MS = 10 * 60_000;

export interface ScanNotices {
  /** A name that matches but is no regular file: once per name. */
  notFile?(name: string): void;
  /** A file that has changed at every scan for NEVER_STABLE_MS: once per file. */
  neverStable?(name: string, changingMs: number): void;
}

export interface WatcherOptions {
  folder: string;
  pattern: readonly string[];
  ignore: readonly string[];
  stableForMs: number;
  readyMarker: string | undefined;
}

export class FolderWatcher {
  private readonly matches: (name: string) => boolean;
  private readonly ignored: (name: string) => boolean;
  private readonly seen = new Map<string, Seen>();
  /** Names that match but are no regular file (a link, a FIFO, a folder): said once each. */
  private readonly others = new Set<string>();

  constructor(private readonly o: WatcherOptions) {
    this.matches = globMatcher(o.pattern);
    this.ignored = globMatcher(o.ignore);
  }

  /**
   * The files ready to take, oldest first; throws when the folder cannot be listed. A file that
   * vanishes between the listing and its stat is left out.
   */
  async ready(now: number, notices: ScanNotices = {}): Promise<FileState[]> {
    const entries = await readdir(this.o.folder, { withFileTypes: true });
    const names = new Set<string>();
    const markers = new Set<string>();
    const others = new Set<string>();
    for (const e of entries) {
      const marker = this.o.readyMarker;
      if (marker && e.name.endsWith(marker)) markers.add(e.name.slice(0, -marker.length));
      else if (this.matches(e.name) && !this.ignored(e.name) && !e.name.endsWith('.reason')) {
        // Regular files only. A symbolic link is not followed: it may point out of the folder (at
        // /etc/shadow, whose first line a rejection reason would quote), at a FIFO whose read never
        // ends, or at a device. (Node asks lstat itself where the file system gives no type.)
        if (e.isFile()) names.add(e.name);
        else if (!e.isDirectory()) others.add(e.name);
      }
    }
    for (const name of this.seen.keys()) if (!names.has(name)) this.seen.delete(name);
    for (const name of this.others) if (!others.has(name)) this.others.delete(name);
    for (const name of others)
      if (!this.others.has(name)) {
        this.others.add(name);
        notices.notFile?.(name);
      }
    const ready: FileState[] = [];
    for (const name of names) {
      const path = join(this.o.folder, name);
      let s;
      try {
        s = await lstat(path);
      } catch {
        // Gone (taken by someone else, renamed) or not ours to read: the next scan sees.
        this.seen.delete(name);
        continue;
      }
      if (!s.isFile()) continue;
      const before = this.seen.get(name);
      if (!before || before.size !== s.size || before.mtimeMs !== s.mtimeMs) {
        const first = before?.first ?? now;
        const warned = before?.warned ?? false;
        const late = !this.o.readyMarker && !warned && now - first >= Math.max(NEVER_STABLE_MS, 10 * this.o.stableForMs);
        this.seen.set(name, { size: s.size, mtimeMs: s.mtimeMs, since: now, first, warned: warned || late });
        if (late) notices.neverStable?.(name, now - first);
        if (!this.o.readyMarker) continue;
      }
      const since = this.seen.get(name)!.since;
      const complete = this.o.readyMarker ? markers.has(name) : now - since >= this.o.stableForMs;
      if (complete) ready.push({ name, path, size: s.size, mtimeMs: s.mtimeMs });
    }
    return ready.sort((a, b) => a.mtimeMs - b.mtimeMs || (a.name < b.name ? -1 : 1));
  }

  /** Whether the last scan saw a file of this name in the folder. */
  has(name: string): boolean {
    return this.seen.has(name);
  }

  /** Forget what was seen of a file: it changed while being read, and must be stable again. */
  unsettle(name: string): void {
    this.seen.delete(name);
  }
}
