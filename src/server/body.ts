/** Request bodies: read at most a cap of bytes (413 past it), then parsed as JSON (400 if bad). */

export type BodyResult =
  | { ok: true; value: unknown }
  | { ok: false; status: 400 | 413; message: string };

/** 1 MiB. */
export const DEFAULT_MAX_BODY = 1 << 20;

function tooLarge(max: number): BodyResult {
  return { ok: false, status: 413, message: `request body is larger than ${max} bytes` };
}

/** The bytes of `req`'s body, or null once they pass `max` (the rest is not read). */
export async function readCapped(
  req: Request,
  max: number,
): Promise<Uint8Array<ArrayBuffer> | null> {
  const declared = Number(req.headers.get("content-length") ?? NaN);
  if (Number.isFinite(declared) && declared > max) {
    await req.body?.cancel().catch(() => {});
    return null;
  }
  if (!req.body) return new Uint8Array(0);
  const reader = req.body.getReader();
  const parts: Uint8Array[] = [];
  let size = 0;
  while (true) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.length;
    if (size > max) {
      await reader.cancel().catch(() => {});
      return null;
    }
    parts.push(value);
  }
  const out = new Uint8Array(size);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

export async function readJsonBody(req: Request, max = DEFAULT_MAX_BODY): Promise<BodyResult> {
  const bytes = await readCapped(req, max);
  if (bytes === null) return tooLarge(max);
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    return { ok: false, status: 400, message: "request body is not valid UTF-8" };
  }
  if (text.trim() === "") return { ok: false, status: 400, message: "request body is empty" };
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch (err) {
    return {
      ok: false,
      status: 400,
      message: `request body is not valid JSON: ${(err as Error).message.split("\n")[0]}`,
    };
  }
}
