import { describe, expect, it } from 'vitest';
import { SchemaRegistryError } from '../../src/errors.js';
import { RegistryRequests } from '../../src/formats/registry-requests.js';

/** A request that answers when the test says so, and counts how many are open at once. */
function gatedRequests() {
  let open = 0;
  let most = 0;
  let sent = 0;
  const answers: Array<() => void> = [];
  const request = () => {
    most = Math.max(most, ++open);
    const n = ++sent;
    return new Promise<string>((resolve) => answers.push(() => resolve(`answer ${n}`))).finally(() => open--);
  };
  return { request, answerAll: () => answers.splice(0).forEach((answer) => answer()), sent: () => sent, mostAtOnce: () => most };
}

const settled = () => new Promise((resolve) => setImmediate(resolve));

describe('RegistryRequests', () => {
  it('sends at most maxAtOnce at a time, and the rest in turn as answers come', async () => {
    const requests = new RegistryRequests(3);
    const gate = gatedRequests();
    const all = Promise.all(Array.from({ length: 10 }, () => requests.send('a schema', gate.request)));
    for (let round = 0; round < 4; round++) {
      await settled();
      gate.answerAll();
    }
    expect(await all).toEqual(Array.from({ length: 10 }, (_, i) => `answer ${i + 1}`));
    expect(gate.mostAtOnce()).toBe(3);
  });

  it('once closed, sends nothing more: requests waiting fail as retriable, those sent finish', async () => {
    const requests = new RegistryRequests(2);
    const gate = gatedRequests();
    const results = Array.from({ length: 5 }, () => requests.send('a schema', gate.request).then((v) => v, (e: unknown) => e));
    await settled();
    expect(gate.sent()).toBe(2);
    requests.close();
    gate.answerAll();
    const outcomes = await Promise.all(results);
    expect(outcomes.slice(0, 2)).toEqual(['answer 1', 'answer 2']);
    for (const failed of outcomes.slice(2)) {
      expect(failed).toBeInstanceOf(SchemaRegistryError);
      expect((failed as SchemaRegistryError).retriable).toBe(true);
      expect((failed as Error).message).toBe('a schema was not asked: the batch that needed it had already failed');
    }
    await expect(requests.send('another', gate.request)).rejects.toThrow('another was not asked');
    expect(gate.sent()).toBe(2);
  });

  it('a failed request passes its turn on', async () => {
    const requests = new RegistryRequests(1);
    const failed = requests.send('first', () => Promise.reject(new Error('refused')));
    const second = requests.send('second', () => Promise.resolve('ok'));
    await expect(failed).rejects.toThrow('refused');
    await expect(second).resolves.toBe('ok');
  });
});
