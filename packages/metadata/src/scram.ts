/**
 * SCRAM credentials in metadata (Kafka's `kafka-configs --entity-type users` SCRAM-SHA-256 /
 * SCRAM-SHA-512 entries, AlterUserScramCredentials): per user and mechanism, the salt, the
 * iteration count, StoredKey and ServerKey. Never the password nor the salted password: the
 * client salts (AlterUserScramCredentials carries SaltedPassword) and the broker derives the keys.
 *
 * Persisted form (LocalStore's JSON file, Redis' `runnel:scram-credentials` hash field per user):
 *   { "SCRAM-SHA-256": { "salt": "<base64>", "storedKey": "<base64>", "serverKey": "<base64>", "iterations": 8192 } }
 */
export const SCRAM_MECHANISM_NAMES = ['SCRAM-SHA-256', 'SCRAM-SHA-512'] as const;
export type ScramMechanismName = (typeof SCRAM_MECHANISM_NAMES)[number];

export interface ScramCredentialData {
  salt: Buffer;
  storedKey: Buffer;
  serverKey: Buffer;
  iterations: number;
}

/** user → mechanism → credential (MetadataSnapshot.scramCredentials). */
export type ScramCredentials = ReadonlyMap<string, ReadonlyMap<ScramMechanismName, ScramCredentialData>>;

export interface ScramCredentialUpsert {
  user: string;
  mechanism: ScramMechanismName;
  credential: ScramCredentialData;
}

export interface ScramCredentialDeletion {
  user: string;
  mechanism: ScramMechanismName;
}

/** The persisted JSON of one user's credentials. */
export type PersistedUserScram = Partial<Record<ScramMechanismName, { salt: string; storedKey: string; serverKey: string; iterations: number }>>;

export function encodeUserScram(creds: ReadonlyMap<ScramMechanismName, ScramCredentialData>): PersistedUserScram {
  const out: PersistedUserScram = {};
  for (const [m, c] of creds) {
    out[m] = { salt: c.salt.toString('base64'), storedKey: c.storedKey.toString('base64'), serverKey: c.serverKey.toString('base64'), iterations: c.iterations };
  }
  return out;
}

export function decodeUserScram(json: PersistedUserScram): Map<ScramMechanismName, ScramCredentialData> {
  const out = new Map<ScramMechanismName, ScramCredentialData>();
  for (const m of SCRAM_MECHANISM_NAMES) {
    const c = json[m];
    if (c) out.set(m, { salt: Buffer.from(c.salt, 'base64'), storedKey: Buffer.from(c.storedKey, 'base64'), serverKey: Buffer.from(c.serverKey, 'base64'), iterations: c.iterations });
  }
  return out;
}

/** The persisted credentials of every user with the upserts and deletions applied (users left with none are dropped). */
export function withScramChanges(
  all: Readonly<Record<string, PersistedUserScram>>, upserts: readonly ScramCredentialUpsert[], deletions: readonly ScramCredentialDeletion[],
): Record<string, PersistedUserScram> {
  // User names are client input: on a plain object, `__proto__` would set the prototype instead of
  // storing the user and `constructor` would read Object's; a null-prototype object keeps them as data.
  const out: Record<string, PersistedUserScram> = Object.assign(Object.create(null) as Record<string, PersistedUserScram>, all);
  for (const d of deletions) {
    const u = { ...out[d.user] };
    delete u[d.mechanism];
    if (Object.keys(u).length > 0) out[d.user] = u;
    else delete out[d.user];
  }
  for (const u of upserts) out[u.user] = { ...out[u.user], ...encodeUserScram(new Map([[u.mechanism, u.credential]])) };
  return out;
}

export function decodeScramCredentials(all: Readonly<Record<string, PersistedUserScram>> | undefined): Map<string, Map<ScramMechanismName, ScramCredentialData>> {
  return new Map(Object.entries(all ?? {}).map(([user, json]) => [user, decodeUserScram(json)]));
}
