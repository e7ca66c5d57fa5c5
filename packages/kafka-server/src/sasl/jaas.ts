/**
 * The JAAS text of `listener.name.<listener>.plain.sasl.jaas.config`, as Kafka's JaasConfig reads
 * it: `<LoginModule class> <required|requisite|sufficient|optional> key="value" ...;`. Only what
 * PLAIN needs is used: the `user_<name>="<password>"` options (Kafka's PlainLoginModule users);
 * `username`/`password` (the broker's own client identity) are accepted and ignored.
 */
export interface JaasEntry {
  loginModule: string;
  flag: string;
  options: Map<string, string>;
}

/** Parses one or more `Module flag k=v ...;` entries; throws a one-line Error on bad syntax. */
export function parseJaasConfig(text: string): JaasEntry[] {
  const out: JaasEntry[] = [];
  // Tokens: quoted strings (with \" and \\ escapes), `=`, `;`, or bare words.
  const re = /\s*(?:"((?:[^"\\]|\\.)*)"|(=)|(;)|([^\s=;"]+))/gy;
  const tokens: Array<{ kind: 'word' | 'quoted' | '=' | ';'; text: string }> = [];
  let m: RegExpExecArray | null;
  let pos = 0;
  while (pos < text.length) {
    re.lastIndex = pos;
    m = re.exec(text);
    if (!m) {
      if (/^\s*$/.test(text.slice(pos))) break;
      // The position only, never the text: what fails to parse is usually an unclosed password.
      throw new Error(`JAAS config: cannot parse at character ${pos + 1} (an unclosed quote?)`);
    }
    pos = re.lastIndex;
    if (m[1] !== undefined) tokens.push({ kind: 'quoted', text: m[1].replace(/\\(.)/g, '$1') });
    else if (m[2]) tokens.push({ kind: '=', text: '=' });
    else if (m[3]) tokens.push({ kind: ';', text: ';' });
    else if (m[4] !== undefined) tokens.push({ kind: 'word', text: m[4] });
  }
  let i = 0;
  while (i < tokens.length) {
    const mod = tokens[i++];
    const flag = tokens[i++];
    if (mod?.kind !== 'word' || flag?.kind !== 'word') throw new Error('JAAS config: expected "<LoginModule> <flag> key=\\"value\\" ...;"');
    if (!['required', 'requisite', 'sufficient', 'optional'].includes(flag.text.toLowerCase())) {
      throw new Error(`JAAS config: ${flag.text} is not a login module flag (required, requisite, sufficient, optional)`);
    }
    const options = new Map<string, string>();
    for (;;) {
      const t = tokens[i++];
      if (t === undefined) throw new Error('JAAS config: missing ";" at the end');
      if (t.kind === ';') break;
      const eq = tokens[i++];
      const v = tokens[i++];
      if (t.kind !== 'word' || eq?.kind !== '=' || (v?.kind !== 'quoted' && v?.kind !== 'word')) throw new Error(`JAAS config: expected key="value" after ${mod.text}`);
      options.set(t.text, v.text);
    }
    out.push({ loginModule: mod.text, flag: flag.text, options });
  }
  if (out.length === 0) throw new Error('JAAS config: no login module');
  return out;
}

/** The `user_<name>="<password>"` options of a JAAS config: name → password. */
export function parseJaasUsers(text: string): Map<string, string> {
  const users = new Map<string, string>();
  for (const e of parseJaasConfig(text)) {
    for (const [k, v] of e.options) if (k.startsWith('user_') && k.length > 5) users.set(k.slice(5), v);
  }
  return users;
}
