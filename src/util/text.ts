/** String helpers for messages and file names, shared by every layer. */

/** Collapses line breaks (and the indentation around them) so a message stays on one line. */
export function oneLine(text: string): string {
  return text.replace(/\s*[\r\n]+\s*/g, " ").trim();
}

/** The message of any thrown value. */
export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** The message of any thrown value, on one line (line breaks collapsed). */
export function errorText(err: unknown): string {
  return oneLine(errorMessage(err));
}

/** The first line of the message of any thrown value (the rest dropped). */
export function firstLine(err: unknown): string {
  return errorMessage(err).split(/\r?\n/)[0];
}

/**
 * Natural order: digit runs compare by value ("2" before "10", "1" before "01"),
 * the rest by code unit. A total order, so sorting does not depend on input order.
 */
export function naturalCompare(a: string, b: string): number {
  const re = /(\d+)|(\D+)/g;
  const pa = a.match(re) ?? [];
  const pb = b.match(re) ?? [];
  for (let i = 0; i < Math.min(pa.length, pb.length); i++) {
    const x = pa[i];
    const y = pb[i];
    if (x === y) continue;
    const dx = /^\d/.test(x);
    const dy = /^\d/.test(y);
    if (dx && dy) {
      const nx = x.replace(/^0+/, "");
      const ny = y.replace(/^0+/, "");
      if (nx.length !== ny.length) return nx.length - ny.length;
      if (nx !== ny) return nx < ny ? -1 : 1;
      return x.length - y.length; // "01" after "1"
    }
    return x < y ? -1 : 1;
  }
  if (pa.length !== pb.length) return pa.length - pb.length;
  return a < b ? -1 : a > b ? 1 : 0;
}
