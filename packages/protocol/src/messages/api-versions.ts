import { api, f, message, structs } from '../schema.ts';

/**
 * ApiVersions (key 18). v3 is flexible in its body, but its response header is always v0
 * (KIP-511); an unsupported version gets the v0-format reply of `encodeApiVersionsUnsupported`.
 * v4 has v3's body; it only allows a supported feature's minVersion to be 0 (KAFKA-17011: older
 * clients fail on it, so a v3 answer says 1 there). The features fields are tagged (KIP-584).
 */
export const ApiVersions = api(18,
  message('ApiVersionsRequest', [0, 4], 3, [
    f('clientSoftwareName', 'string', '3+', { default: '' }),
    f('clientSoftwareVersion', 'string', '3+', { default: '' }),
  ]),
  message('ApiVersionsResponse', [0, 4], 3, [
    f('errorCode', 'int16', '0+'),
    structs('apiKeys', '0+', [
      f('apiKey', 'int16', '0+'),
      f('minVersion', 'int16', '0+'),
      f('maxVersion', 'int16', '0+'),
    ]),
    f('throttleTimeMs', 'int32', '1+'),
    structs('supportedFeatures', '3+', [
      f('name', 'string', '3+'),
      f('minVersion', 'int16', '3+'),
      f('maxVersion', 'int16', '3+'),
    ], { tag: 0, taggedVersions: '3+' }),
    f('finalizedFeaturesEpoch', 'int64', '3+', { tag: 1, taggedVersions: '3+', default: -1 }),
    structs('finalizedFeatures', '3+', [
      f('name', 'string', '3+'),
      f('maxVersionLevel', 'int16', '3+'),
      f('minVersionLevel', 'int16', '3+'),
    ], { tag: 2, taggedVersions: '3+' }),
    f('zkMigrationReady', 'bool', '3+', { tag: 3, taggedVersions: '3+', default: false }),
  ]),
);
