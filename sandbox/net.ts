import type { Server } from 'node:net';
import { type AddressInfo, createConnection } from 'node:net';

/** Starts `server` on host:port (0 picks a free port); resolves with the bound port and a close(). */
export async function listen(
  server: Server,
  host: string,
  port: number,
): Promise<{ port: number; close(): Promise<void> }> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, resolve);
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

export function canConnect(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host, port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** Resolves once host:port accepts connections; `stillStarting` lets a caller stop waiting for a dead process. */
export async function waitForPort(
  host: string,
  port: number,
  timeoutMs: number,
  stillStarting: () => void = () => {},
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    stillStarting();
    if (await canConnect(host, port)) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`nothing listened on ${host}:${port} within ${timeoutMs / 1000} s`);
}
