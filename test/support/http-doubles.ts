import { createServer, type IncomingHttpHeaders, request, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface SeenRequest {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
}

export interface RunningDouble {
  url: string;
  /** Every request received, in order. */
  requests: SeenRequest[];
  close(): Promise<void>;
}

export interface CannedAnswer {
  status: number;
  contentType?: string;
  body: string;
}

/**
 * What a proxy does with one request: pass it on and relay the answer, pass it on and then cut the
 * client's connection without a word (the answer is lost on the way back), or answer by itself.
 */
export type ProxyDecision = 'forward' | 'lose-answer' | CannedAnswer;

/**
 * An HTTP server that answers every request itself: what a CLI meets when its API URL points at
 * something that is not the admin API (serverless-offline's error body, a proxy's page).
 */
export function startFakeApi(answer: (seen: SeenRequest) => CannedAnswer): Promise<RunningDouble> {
  return startDouble(async (seen, response) => reply(response, answer(seen)));
}

/**
 * A proxy in front of `target` that keeps the Host header as the client sent it, so SigV4 signatures
 * made for the proxy's address still verify at the sandbox's front door.
 */
export function startProxy(
  target: string,
  decide: (seen: SeenRequest, index: number) => ProxyDecision,
): Promise<RunningDouble> {
  const upstream = new URL(target);
  let count = 0;
  return startDouble(async (seen, response) => {
    const decision = decide(seen, count++);
    if (typeof decision === 'object') return reply(response, decision);
    const answer = await forward(upstream, seen);
    if (decision === 'lose-answer') {
      response.socket?.destroy();
      return;
    }
    response.writeHead(answer.status, answer.headers);
    response.end(answer.body);
  });
}

function startDouble(
  handle: (seen: SeenRequest, response: ServerResponse) => Promise<void>,
): Promise<RunningDouble> {
  const requests: SeenRequest[] = [];
  const server = createServer((incoming, response) => {
    const chunks: Buffer[] = [];
    incoming.on('data', (chunk: Buffer) => chunks.push(chunk));
    incoming.on('end', () => {
      const seen = {
        method: incoming.method ?? 'GET',
        url: incoming.url ?? '/',
        headers: incoming.headers,
        body: Buffer.concat(chunks).toString('utf8'),
      };
      requests.push(seen);
      handle(seen, response).catch(() => response.socket?.destroy());
    });
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      resolve({
        url: `http://127.0.0.1:${port}`,
        requests,
        close: () =>
          new Promise((done) => {
            server.closeAllConnections();
            server.close(() => done());
          }),
      });
    });
  });
}

function reply(response: ServerResponse, answer: CannedAnswer): void {
  response.writeHead(answer.status, { 'content-type': answer.contentType ?? 'application/json' });
  response.end(answer.body);
}

function forward(
  upstream: URL,
  seen: SeenRequest,
): Promise<{ status: number; headers: IncomingHttpHeaders; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const outgoing = request(
      {
        host: upstream.hostname,
        port: upstream.port,
        method: seen.method,
        path: seen.url,
        headers: seen.headers,
      },
      (answer) => {
        const chunks: Buffer[] = [];
        answer.on('data', (chunk: Buffer) => chunks.push(chunk));
        answer.on('end', () =>
          resolve({ status: answer.statusCode ?? 502, headers: answer.headers, body: Buffer.concat(chunks) }),
        );
      },
    );
    outgoing.on('error', reject);
    outgoing.end(seen.body);
  });
}
