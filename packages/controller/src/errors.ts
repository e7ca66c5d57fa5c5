import { RunnelError } from '@runnel/common';

/**
 * Refusals that belong to the controller role itself (topic refusals are MetadataErrors, with the
 * codes LocalStore uses, so a node maps them to the same Kafka errors as under `runnel start`).
 *
 * - NOT_CONTROLLER: this process does not hold the lease (a standby, or one that just lost it);
 *   retriable, the caller finds the current controller through metadata and tries again.
 * - BAD_REQUEST: a request the method table allows but the controller cannot act on
 *   (a negative node id, a node with no roles).
 */
export type ControllerErrorCode = 'NOT_CONTROLLER' | 'BAD_REQUEST';

export class ControllerError extends RunnelError<ControllerErrorCode> {}
