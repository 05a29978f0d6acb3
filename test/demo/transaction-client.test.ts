import { createServer, type Server, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { longestGap, startTransactionClient, throughputSeries } from './transaction-client.js';

describe('longestGap', () => {
  it('finds the longest pause between completions that overlaps a window', () => {
    const completions = [0, 10, 20, 300, 310, 2000];
    expect(longestGap(completions)).toBe(1690);
    expect(longestGap(completions, 0, 300)).toBe(280);
    expect(longestGap(completions, 1000, 1100)).toBe(1690);
    expect(longestGap([5])).toBe(0);
  });
});

describe('throughputSeries', () => {
  it('counts completions per bucket as transactions per second', () => {
    expect(throughputSeries([0, 50, 99, 100, 250], 0, 300, 100)).toEqual([30, 10, 10]);
  });
});

describe('startTransactionClient', () => {
  let server: Server;
  const sockets: Socket[] = [];
  let counter = 0;

  beforeAll(async () => {
    server = createServer((socket) => {
      sockets.push(socket);
      socket.setEncoding('utf8');
      socket.on('data', (chunk: string) => {
        for (const line of chunk.split('\n').filter(Boolean)) {
          if (line === 'INC k') socket.write(`${++counter}\n`);
        }
      });
      socket.on('error', () => undefined);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  });

  afterAll(async () => {
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => server.close(resolve));
  });

  it('issues transactions in a closed loop and reconnects after the connection drops', async () => {
    const address = server.address();
    if (address === null || typeof address === 'string') throw new Error('no port');
    const client = startTransactionClient('127.0.0.1', address.port, 'k');
    while (client.log.completions.length < 20) await sleep(10);
    sockets[0]!.destroy();
    while (sockets.length < 2 || client.log.completions.length < 40) await sleep(10);
    await client.stop();
    expect(client.log.errors.length).toBeGreaterThanOrEqual(1);
    expect(client.log.outOfOrder).toBe(0);
    expect(client.log.lastValue).toBe(client.log.completions.length);
  });
});
