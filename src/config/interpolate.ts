// ${VAR} and ${VAR:-default} in string values of a parsed config. Substitution happens after
// YAML parsing, so a value can never inject YAML structure.

export interface MissingVariable {
  path: string;
  variable: string;
}

const PATTERN = /\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;

/** Returns a copy with variables replaced. A string with a missing variable becomes undefined. */
export function interpolateEnv(
  value: unknown,
  env: Record<string, string | undefined>,
  missing: MissingVariable[],
  path = '',
): unknown {
  if (typeof value === 'string') {
    if (!value.includes('${')) return value;
    let absent: string | undefined;
    const out = value.replace(PATTERN, (_, name: string, dflt: string | undefined) => {
      const v = env[name];
      if (v !== undefined && v !== '') return v;
      if (dflt !== undefined) return dflt;
      absent ??= name;
      return '';
    });
    if (absent) {
      missing.push({ path, variable: absent });
      return undefined;
    }
    return out;
  }
  if (Array.isArray(value)) return value.map((v, i) => interpolateEnv(v, env, missing, `${path}/${i}`));
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      const r = interpolateEnv(v, env, missing, `${path}/${k}`);
      if (r !== undefined) out[k] = r;
    }
    return out;
  }
  return value;
}
