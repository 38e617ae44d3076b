/** The one atomic file writer, shared by the model files and the run directory. */
import { basename, dirname, join } from "node:path";

/** What `writeAtomic` writes: bytes, text, or a function that writes to the open file. */
export type AtomicContent = Uint8Array | string | ((file: Deno.FsFile) => Promise<void>);

/**
 * Writes `path` atomically: the content goes to a new temporary file in the same folder, which
 * is fsynced and renamed over `path`, and the folder is then fsynced (best effort), so a kill -9
 * at any point leaves either the old file or the new one, never a partial one. On failure the
 * temporary file is removed and the error is rethrown as it came. The folder must exist.
 */
export async function writeAtomic(path: string, content: AtomicContent): Promise<void> {
  const dir = dirname(path);
  const tmp = join(
    dir,
    `.${basename(path)}.${Deno.pid}-${crypto.randomUUID().slice(0, 8)}.tmp`,
  );
  let file: Deno.FsFile | undefined;
  try {
    file = await Deno.open(tmp, { write: true, createNew: true });
    if (typeof content === "function") {
      await content(file);
    } else {
      await writeAll(
        file,
        typeof content === "string" ? new TextEncoder().encode(content) : content,
      );
    }
    await file.sync();
    file.close();
    file = undefined;
    await Deno.rename(tmp, path);
  } catch (err) {
    try {
      file?.close();
    } catch { /* already closed */ }
    await Deno.remove(tmp).catch(() => {}); // never created, or already renamed
    throw err;
  }
  await syncDir(dir);
}

/** Writes every byte of `bytes` (Deno's write may write less than asked). */
export async function writeAll(file: Deno.FsFile, bytes: Uint8Array): Promise<void> {
  let done = 0;
  while (done < bytes.length) {
    done += await file.write(bytes.subarray(done));
  }
}

/** fsyncs a folder so a rename in it is durable; best effort (not every OS allows it). */
async function syncDir(dir: string): Promise<void> {
  if (Deno.build.os === "windows") return;
  try {
    const d = await Deno.open(dir, { read: true });
    try {
      await d.sync();
    } finally {
      d.close();
    }
  } catch {
    // Some file systems refuse fsync on a folder; the rename itself is still atomic.
  }
}
