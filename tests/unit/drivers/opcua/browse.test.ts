// The browse's bounds, against a session that answers every Browse with a thousand references: the
// variables kept and the requests made stop at the limit, whatever the address space holds.
import { NodeClass, type ClientSession } from 'node-opcua';
import { expect, it } from 'vitest';
import { browseVariables } from '../../../../drivers/opcua/browse.js';

it('stops browsing once it has the limit of variables, and keeps no more than that', async () => {
  let browses = 0;
  let readIds = 0;
  const ref = (id: string, cls: NodeClass) => ({
    nodeId: { toString: () => id },
    browseName: { namespaceIndex: 1, name: id },
    nodeClass: cls,
  });
  const session = {
    async browse(nodes: Array<{ nodeId: string }>) {
      browses++;
      return nodes.map((n) => ({
        // Objects has 300 objects; each object has 1,000 variables.
        references:
          n.nodeId === 'ns=0;i=85'
            ? Array.from({ length: 300 }, (_, k) => ref(`o${k}`, NodeClass.Object))
            : Array.from({ length: 1000 }, (_, k) => ref(`${n.nodeId}.v${k}`, NodeClass.Variable)),
      }));
    },
    async read(ids: unknown[]) {
      readIds += ids.length;
      return ids.map(() => ({ value: { value: null }, statusCode: { name: 'Good' } }));
    },
  } as unknown as ClientSession;
  const vars = await browseVariables(session, 'ns=0;i=85', 2, 2000);
  expect(vars).toHaveLength(2000);
  // Objects, then the first 100 objects (one request, within our bound of 100 a Browse): 2,000 found there.
  expect(browses).toBe(2);
  // The two operation limits, then each variable's data type and value.
  expect(readIds).toBe(2 + 2 * 2000);
});
