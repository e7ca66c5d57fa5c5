/**
 * Client quotas (Kafka's KIP-55/KIP-546 `kafka-configs --entity-type users|clients`) as metadata.
 *
 * An entity is a set of (type, name) pairs: `user`, `client-id` or both (Kafka's `ip` entities,
 * connection-rate quotas, are not kept); a null name is that type's default entity (`<default>`).
 * Stored under a canonical key: the JSON of its pairs sorted by type, e.g.
 * `[["client-id","c1"],["user",null]]` = client c1 of the default user. The values are Kafka's
 * quota keys (`producer_byte_rate`, `consumer_byte_rate`, `request_percentage`) as numbers. An
 * entity without values is absent.
 */
export type ClientQuotaEntityType = 'user' | 'client-id';
export const CLIENT_QUOTA_ENTITY_TYPES: readonly ClientQuotaEntityType[] = ['client-id', 'user'];
/** The quota keys AlterClientQuotas accepts (Kafka's DynamicConfig.User/Client). */
export const CLIENT_QUOTA_KEYS = ['producer_byte_rate', 'consumer_byte_rate', 'request_percentage', 'controller_mutation_rate'] as const;

/** (type, name) pairs; name null = the default entity of the type. */
export type ClientQuotaEntity = Partial<Record<ClientQuotaEntityType, string | null>>;
export type ClientQuotas = ReadonlyMap<string, Readonly<Record<string, number>>>;

/** One AlterClientQuotas entry: number = set the key, null = remove it. */
export interface ClientQuotaAlteration {
  entity: ClientQuotaEntity;
  ops: Record<string, number | null>;
}

export function clientQuotaKey(entity: ClientQuotaEntity): string {
  return JSON.stringify(CLIENT_QUOTA_ENTITY_TYPES.filter((t) => t in entity).map((t) => [t, entity[t] ?? null]));
}

export function parseClientQuotaKey(key: string): ClientQuotaEntity {
  const out: ClientQuotaEntity = {};
  for (const [t, name] of JSON.parse(key) as [ClientQuotaEntityType, string | null][]) out[t] = name;
  return out;
}

/** `quotas` (as persisted: key → values) after `alterations`; entities left without values are dropped. */
export function withClientQuotaChanges(quotas: Readonly<Record<string, Record<string, number>>>, alterations: readonly ClientQuotaAlteration[]): Record<string, Record<string, number>> {
  const next = { ...quotas };
  for (const a of alterations) {
    const key = clientQuotaKey(a.entity);
    const values = { ...next[key] };
    for (const [k, v] of Object.entries(a.ops)) {
      if (v === null) delete values[k];
      else values[k] = v;
    }
    if (Object.keys(values).length > 0) next[key] = values;
    else delete next[key];
  }
  return next;
}
