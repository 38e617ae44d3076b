/**
 * File access confined to one folder: every path is resolved, symlinks
 * included, and refused unless it stays inside the folder's real path. The
 * progress server reads a run directory only through these functions.
 */
import { isAbsolute, relative, resolve } from "node:path";

/** Whether `path` is `root` or inside it (both absolute and normalized). */
export function within(root: string, path: string): boolean {
  const rel = relative(root, path);
  return rel === "" || (!rel.startsWith("..") && !isAbsolute(rel));
}

/** A folder whose files can be read by relative path, never escaping it. */
export class SafeDir {
  readonly root: string;
  #real: string | null = null;

  constructor(root: string) {
    this.root = resolve(root);
  }

  /** The folder's real path (symlinks resolved), or null while it does not exist. */
  async realRoot(): Promise<string | null> {
    if (this.#real !== null) return this.#real;
    try {
      this.#real = await Deno.realPath(this.root);
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) return null;
      throw err;
    }
    return this.#real;
  }

  /**
   * The real path of `rel` when it exists and lies inside the folder, else
   * null. `rel` must be relative, with no ".." segment and no NUL.
   */
  async resolve(rel: string): Promise<string | null> {
    if (rel.includes("\0") || isAbsolute(rel) || rel.split(/[\\/]/).includes("..")) return null;
    const root = await this.realRoot();
    if (root === null) return null;
    const lexical = resolve(root, rel);
    if (!within(root, lexical)) return null;
    let real: string;
    try {
      real = await Deno.realPath(lexical);
    } catch (err) {
      if (err instanceof Deno.errors.NotFound || err instanceof Deno.errors.NotADirectory) {
        return null;
      }
      throw err;
    }
    return within(root, real) ? real : null;
  }

  /** The text of file `rel`, or null when it is missing, not a file, or outside the folder. */
  async readText(rel: string): Promise<string | null> {
    const p = await this.resolve(rel);
    if (p === null) return null;
    try {
      return await Deno.readTextFile(p);
    } catch (err) {
      if (
        err instanceof Deno.errors.NotFound || err instanceof Deno.errors.IsADirectory ||
        err instanceof Deno.errors.PermissionDenied
      ) return null;
      throw err;
    }
  }

  /** The parsed JSON of file `rel`, or null when missing or not valid JSON. */
  async readJson(rel: string): Promise<unknown | null> {
    const text = await this.readText(rel);
    if (text === null) return null;
    try {
      return JSON.parse(text);
    } catch {
      return null; // being written by another process, or corrupt: treated as absent
    }
  }

  /** Stat of `rel` (inside the folder), or null. */
  async stat(rel: string): Promise<Deno.FileInfo | null> {
    const p = await this.resolve(rel);
    if (p === null) return null;
    try {
      return await Deno.stat(p);
    } catch {
      return null;
    }
  }

  /** Names of the plain files in folder `rel` (inside the folder), sorted; [] if none. */
  async list(rel: string, suffix = ""): Promise<string[]> {
    const p = await this.resolve(rel);
    if (p === null) return [];
    const names: string[] = [];
    try {
      for await (const e of Deno.readDir(p)) {
        if (!e.name.startsWith(".") && e.name.endsWith(suffix) && (e.isFile || e.isSymlink)) {
          names.push(e.name);
        }
      }
    } catch {
      return [];
    }
    return names.sort();
  }
}
