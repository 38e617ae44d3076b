/**
 * Errors a user can act on. Each carries one line that names what is wrong;
 * entry points print `message` alone, without a stack trace.
 */
export class EngineError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** An op was given tensors whose shapes, dtypes or values it cannot take. */
export class OpError extends EngineError {}

/** The GPU is missing, was lost, or rejected a command. */
export class GpuError extends EngineError {}

/**
 * Runs `main`; an EngineError becomes one line on stderr and exit code 1, and
 * so does a bad command-line option (node:util parseArgs' errors), followed
 * by the first line of `usage`.
 */
export async function runMain(main: () => Promise<void>, usage?: string): Promise<void> {
  try {
    await main();
  } catch (err) {
    if (err instanceof EngineError) {
      console.error(`error: ${err.message}`);
      Deno.exit(1);
    }
    const code = (err as { code?: unknown })?.code;
    if (typeof code === "string" && code.startsWith("ERR_PARSE_ARGS")) {
      // "Unknown option '--x'. To specify a positional argument ..." : the first sentence says it.
      const what = (err as Error).message.split(/\.\s/)[0];
      console.error(`error: ${what}${usage ? `; ${usage.split("\n")[0]}` : ""}`);
      Deno.exit(1);
    }
    throw err;
  }
}
