/**
 * DescribeUserScramCredentials (50) and AlterUserScramCredentials (51), as Kafka's
 * ScramControlManager answers them: `kafka-configs --entity-type users --alter --add-config
 * 'SCRAM-SHA-256=[iterations=8192,password=...]'` (the tool salts the password itself) and
 * `--describe`. Authorization (Cluster DESCRIBE / ALTER) is the authorizer's edge check.
 */
import type { MetadataStore, ScramCredentialDeletion, ScramCredentialUpsert, ScramMechanismName } from '@runnel/metadata';
import { ApiKey, ErrorCode } from '@runnel/protocol';
import { defineHandler, type Handler } from '../handler.ts';
import { metadataErrorCode } from '../metadata-errors.ts';
import { credentialFromSaltedPassword, SCRAM_MAX_ITERATIONS, SCRAM_MIN_ITERATIONS } from './scram.ts';

/** Kafka's ScramMechanism type codes. */
const MECHANISM_BY_CODE: Record<number, ScramMechanismName> = { 1: 'SCRAM-SHA-256', 2: 'SCRAM-SHA-512' };
const CODE_BY_MECHANISM: Record<ScramMechanismName, number> = { 'SCRAM-SHA-256': 1, 'SCRAM-SHA-512': 2 };

export function scramCredentialHandlers(metadata: MetadataStore): Handler[] {
  const describe = defineHandler({
    api: ApiKey.DescribeUserScramCredentials,
    versions: [0, 0],
    handle(req) {
      const all = metadata.snapshot().scramCredentials ?? new Map();
      const infos = (user: string) => [...(all.get(user) ?? new Map())].map(([m, c]) => ({ mechanism: CODE_BY_MECHANISM[m as ScramMechanismName], iterations: c.iterations }));
      if (req.users === null || req.users.length === 0) {
        const results = [...all.keys()].sort().map((user) => ({ user, errorCode: ErrorCode.NONE, errorMessage: null, credentialInfos: infos(user) }));
        return { throttleTimeMs: 0, errorCode: ErrorCode.NONE, errorMessage: null, results };
      }
      const counts = new Map<string, number>();
      for (const u of req.users) counts.set(u.name, (counts.get(u.name) ?? 0) + 1);
      const results = [...counts].map(([user, n]) => {
        if (n > 1) return { user, errorCode: ErrorCode.DUPLICATE_RESOURCE, errorMessage: `Cannot describe SCRAM credentials for the same user twice in a single request: ${user}`, credentialInfos: [] };
        if (!all.has(user)) return { user, errorCode: ErrorCode.RESOURCE_NOT_FOUND, errorMessage: `Attempt to describe a user credential that does not exist: ${user}`, credentialInfos: [] };
        return { user, errorCode: ErrorCode.NONE, errorMessage: null, credentialInfos: infos(user) };
      });
      return { throttleTimeMs: 0, errorCode: ErrorCode.NONE, errorMessage: null, results };
    },
  });

  const alter = defineHandler({
    api: ApiKey.AlterUserScramCredentials,
    versions: [0, 0],
    async handle(req) {
      const all = metadata.snapshot().scramCredentials ?? new Map();
      // One result per user; any refused operation of a user refuses all of that user's (Kafka).
      const errors = new Map<string, { code: number; message: string }>();
      const order: string[] = [];
      const refuse = (user: string, code: number, message: string) => { if (!errors.has(user)) errors.set(user, { code, message }); };
      const seen = new Set<string>();
      const upserts: ScramCredentialUpsert[] = [];
      const deletions: ScramCredentialDeletion[] = [];
      const note = (user: string, code: number) => {
        if (!order.includes(user)) order.push(user);
        const key = `${user}\0${code}`;
        if (seen.has(key)) refuse(user, ErrorCode.DUPLICATE_RESOURCE, `A user credential cannot be altered twice in the same request: ${user}`);
        seen.add(key);
        return MECHANISM_BY_CODE[code];
      };
      for (const d of req.deletions) {
        const mechanism = note(d.name, d.mechanism);
        if (d.name === '') refuse(d.name, ErrorCode.UNACCEPTABLE_CREDENTIAL, 'Username must not be empty');
        else if (!mechanism) refuse(d.name, ErrorCode.UNSUPPORTED_SASL_MECHANISM, 'Unknown SCRAM mechanism');
        else if (!all.get(d.name)?.has(mechanism)) refuse(d.name, ErrorCode.RESOURCE_NOT_FOUND, `Attempt to delete a user credential that does not exist: ${d.name}`);
        else deletions.push({ user: d.name, mechanism });
      }
      for (const u of req.upsertions) {
        const mechanism = note(u.name, u.mechanism);
        if (u.name === '') refuse(u.name, ErrorCode.UNACCEPTABLE_CREDENTIAL, 'Username must not be empty');
        else if (!mechanism) refuse(u.name, ErrorCode.UNSUPPORTED_SASL_MECHANISM, 'Unknown SCRAM mechanism');
        else if (u.iterations < SCRAM_MIN_ITERATIONS) refuse(u.name, ErrorCode.UNACCEPTABLE_CREDENTIAL, `Too few iterations (at least ${SCRAM_MIN_ITERATIONS})`);
        else if (u.iterations > SCRAM_MAX_ITERATIONS) refuse(u.name, ErrorCode.UNACCEPTABLE_CREDENTIAL, `Too many iterations (at most ${SCRAM_MAX_ITERATIONS})`);
        else if (u.salt.length === 0 || u.saltedPassword.length === 0) refuse(u.name, ErrorCode.UNACCEPTABLE_CREDENTIAL, 'Salt and salted password must not be empty');
        else upserts.push({ user: u.name, mechanism, credential: credentialFromSaltedPassword(mechanism, u.salt, u.saltedPassword, u.iterations) });
      }
      const ok = (x: { user: string }) => !errors.has(x.user);
      const goUpserts = upserts.filter(ok);
      const goDeletions = deletions.filter(ok);
      if (goUpserts.length > 0 || goDeletions.length > 0) {
        if (!metadata.alterScramCredentials) {
          for (const x of [...goUpserts, ...goDeletions]) refuse(x.user, ErrorCode.UNSUPPORTED_VERSION, 'This node\'s metadata store cannot store SCRAM credentials');
        } else {
          try {
            await metadata.alterScramCredentials(goUpserts, goDeletions);
          } catch (err) {
            const code = metadataErrorCode(err, ErrorCode.UNKNOWN_SERVER_ERROR);
            for (const x of [...goUpserts, ...goDeletions]) refuse(x.user, code, (err as Error).message);
          }
        }
      }
      return {
        throttleTimeMs: 0,
        results: order.map((user) => {
          const e = errors.get(user);
          return { user, errorCode: e?.code ?? ErrorCode.NONE, errorMessage: e?.message ?? null };
        }),
      };
    },
  });
  return [describe, alter];
}
