/** A tiny `--name value` / `--flag` parser for the bench scripts. */

export type Args = Map<string, string | true>;

export function parseArgs(argv: readonly string[]): Args {
  const args: Args = new Map();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith('--')) throw new Error(`unexpected argument ${JSON.stringify(arg)}`);
    const eq = arg.indexOf('=');
    if (eq > 0) {
      args.set(arg.slice(2, eq), arg.slice(eq + 1));
      continue;
    }
    const next = argv[i + 1];
    if (next !== undefined && !next.startsWith('--')) {
      args.set(arg.slice(2), next);
      i++;
    } else {
      args.set(arg.slice(2), true);
    }
  }
  return args;
}

export function flag(args: Args, name: string): string | undefined {
  const value = args.get(name);
  if (value === true) throw new Error(`--${name} needs a value`);
  return value;
}

/** A whole number; accepts 10000000, 10_000_000, 10m, 200k. */
export function numberFlag(args: Args, name: string, fallback: number): number {
  const raw = flag(args, name);
  if (raw === undefined) return fallback;
  const match = /^(\d[\d_]*)([km]?)$/i.exec(raw.trim());
  if (!match) throw new Error(`--${name}=${raw}: must be a whole number (e.g. 200000, 200k, 10m)`);
  const base = Number(match[1]!.replaceAll('_', ''));
  const unit = match[2]!.toLowerCase();
  return unit === 'k' ? base * 1_000 : unit === 'm' ? base * 1_000_000 : base;
}
