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
 * An HTTP proxy in front of DynamoDB Local that holds every request `delayMs` before forwarding it,
 * as a network round trip to DynamoDB would: the functions' AWS_ENDPOINT_URL_DYNAMODB points here
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
    const body = await readAll(incoming);
    if (proxy.delayMs > 0) await new Promise((resolve) => setTimeout(resolve, proxy.delayMs));
    const upstream = request(
      { ...target, agent, method: incoming.method, path: incoming.url, headers: incoming.headers },
      (answer) => {
        outgoing.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(outgoing);
      },
    );
    upstream.on('error', () => outgoing.destroy());
    upstream.end(body);
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
