/**
 * Runs one of bench/'s PyTorch scripts beside our figures: Debian's
 * python3-torch from the system python (which a pyenv python3 may shadow;
 * `PYTHON` overrides), with as many threads as we have cores and without
 * OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE, which slow OpenBLAS down when set for
 * another machine. Returns its stdout lines, or null after one stderr line.
 */
export async function runTorchScript(name: string, args: string[]): Promise<string[] | null> {
  const script = new URL(`./${name}`, import.meta.url).pathname;
  const python = Deno.env.get("PYTHON") ??
    (await Deno.stat("/usr/bin/python3").then(() => "/usr/bin/python3", () => "python3"));
  const env = Deno.env.toObject();
  delete env.OPENBLAS_CORETYPE;
  delete env.OPENBLAS_L2_SIZE;
  env.OPENBLAS_NUM_THREADS = String(torchThreads());
  try {
    const out = await new Deno.Command(python, {
      args: [script, ...args],
      env,
      clearEnv: true,
      stdout: "piped",
      stderr: "piped",
    }).output();
    if (!out.success) {
      const last = new TextDecoder().decode(out.stderr).trim().split("\n").pop();
      console.error(`${name} failed (exit ${out.code}): ${last || "no message"}`);
      return null;
    }
    return new TextDecoder().decode(out.stdout).trim().split("\n");
  } catch (err) {
    console.error(`${name} did not run: ${(err as Error).message}`);
    return null;
  }
}

/** PyTorch's thread count: the machine's cores, as ours uses them all. */
export function torchThreads(): number {
  return navigator.hardwareConcurrency;
}
