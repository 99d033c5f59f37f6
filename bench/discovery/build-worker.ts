/**
 * Worker thread of the discovery benchmark's transaction pre-builder (prepareLoad's `builder`):
 * signs and stamps `register` transactions (module `discovery`). With `params.service`, every
 * sender registers instances `<sender label>-<sequence>` of that one service (the service that
 * is resolved); without it, each sender registers instances `i<sequence>` of its own service
 * named by its label (the registration load: no service reaches its instance limit). The
 * instances are not hosted by any node (no node's key signs them), so no node checks or renews
 * them; their TTL outlasts the run.
 */
import { DISCOVERY_MODULE_NAME, discoveryRegister } from '../../src/discovery/index.js';
import { postBuiltBatch } from '../consensus/build-batch.js';
import type { RegisterParams } from './load.js';

postBuiltBatch((job, sender, sequence) => {
  const params = (job.params ?? {}) as RegisterParams;
  const service = params.service ?? sender.label;
  const instance = params.service === undefined ? `i${sequence}` : `${sender.label}-${sequence}`;
  const host = sender.index * 32 + sequence;
  return {
    module: DISCOVERY_MODULE_NAME,
    body: discoveryRegister({
      service,
      instance,
      addresses: [`10.${(host >> 16) & 255}.${(host >> 8) & 255}.${host & 255}`],
      ports: [{ protocol: 'tcp', port: 8080 }],
      identity: `spiffe://${job.chainId}/service/${service}`,
      metadata: { bench: 'discovery' },
      check: { kind: 'tcp', port: 8080, interval: 10_000, timeout: 2_000, rise: 2, fall: 3 },
      ttl: params.ttl,
      status: 'passing',
    }),
  };
});
