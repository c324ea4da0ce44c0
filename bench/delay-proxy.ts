import { Agent, createServer, type IncomingMessage, request, type ServerResponse } from 'node:http';
import { listen } from '../sandbox/net.js';

/** A request the proxy saw: the DynamoDB operation (from X-Amz-Target) and when it arrived. */
export interface ProxiedCall {
  operation: string;
  /** Epoch milliseconds, as the IoT emulator stamps its calls. */
  startedAt: number;
}

export interface DelayProxy {
  url: string;
  /** Added before each request is forwarded; changeable at any time. */
  delayMs: number;
  /** Calls seen since the last `takeCalls()`, while `recording`. */
  recording: boolean;
  takeCalls(): ProxiedCall[];
  close(): Promise<void>;
}

/**
 * An HTTP proxy in front of DynamoDB Local that answers every request `delayMs` after it arrived (or
 * when DynamoDB Local answers, if that is later), as DynamoDB would if each call took `delayMs`: AWS's
 * latency includes the service's own work, so DynamoDB Local's (15-20 ms for a transaction on a
 * loaded 2-core machine) is not added on top of it. The request is forwarded at once: the functions' AWS_ENDPOINT_URL_DYNAMODB points here
 * (SANDBOX_FUNCTIONS_DYNAMODB_ENDPOINT). Requests are forwarded unchanged (DynamoDB Local checks no
 * signature), over kept-alive connections.
 */
export async function startDelayProxy(target: { host: string; port: number }): Promise<DelayProxy> {
  const agent = new Agent({ keepAlive: true });
  let calls: ProxiedCall[] = [];
  const proxy = {
    url: '',
    delayMs: 0,
    recording: false,
    takeCalls: () => {
      const taken = calls;
      calls = [];
      return taken;
    },
    close: async () => {},
  };
  const forward = async (incoming: IncomingMessage, outgoing: ServerResponse) => {
    const startedAt = Date.now();
    const amzTarget = String(incoming.headers['x-amz-target'] ?? '');
    if (proxy.recording) calls.push({ operation: amzTarget.split('.').pop() || '?', startedAt });
    const held = new Promise((resolve) => setTimeout(resolve, proxy.delayMs));
    const body = await readAll(incoming);
    const answer = await new Promise<{ status: number; headers: IncomingMessage['headers']; body: Buffer }>(
      (resolve, reject) => {
        const upstream = request(
          { ...target, agent, method: incoming.method, path: incoming.url, headers: incoming.headers },
          (reply) => {
            readAll(reply).then(
              (replyBody) =>
                resolve({ status: reply.statusCode ?? 502, headers: reply.headers, body: replyBody }),
              reject,
            );
          },
        );
        upstream.on('error', reject);
        upstream.end(body);
      },
    );
    await held;
    outgoing.writeHead(answer.status, answer.headers);
    outgoing.end(answer.body);
  };
  const server = createServer((incoming, outgoing) => {
    forward(incoming, outgoing).catch(() => outgoing.destroy());
  });
  const bound = await listen(server, '127.0.0.1', 0);
  proxy.url = `http://127.0.0.1:${bound.port}`;
  proxy.close = async () => {
    server.closeAllConnections();
    await bound.close();
    agent.destroy();
  };
  return proxy;
}

function readAll(stream: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    stream.on('data', (chunk: Buffer) => chunks.push(chunk));
    stream.on('end', () => resolve(Buffer.concat(chunks)));
    stream.on('error', reject);
  });
}
