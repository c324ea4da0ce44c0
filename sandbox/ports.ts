import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { createServer } from 'node:net';

export interface PortClaim {
  port: number;
  /** The address the component binds (DynamoDB Local binds every interface). */
  host: string;
  /** What listens there, for the error message: "API", "DynamoDB Local", … */
  what: string;
  /** The environment variable that moves it. */
  variable: string;
}

export class PortInUseError extends Error {
  override name = 'PortInUseError';
}

/**
 * Fails fast, before anything starts, when a port the sandbox needs is taken: by a sandbox that was
 * not stopped, or by anything else. The message is one line naming the port (and its holder, when
 * /proc tells).
 */
export async function assertPortsFree(claims: PortClaim[]): Promise<void> {
  for (const claim of claims) {
    if (claim.port === 0 || (await canBind(claim.host, claim.port))) continue;
    const holder = listenerOf(claim.port);
    throw new PortInUseError(
      `port ${claim.port} (${claim.what}) is already in use${holder ? ` by ${holder}` : ''}; ` +
        `stop it, or set ${claim.variable} to another port`,
    );
  }
}

function canBind(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen({ port, host, exclusive: true }, () => server.close(() => resolve(true)));
  });
}

/** "pid 1234 (java)" for the process listening on a TCP port, from Linux's /proc; undefined elsewhere. */
export function listenerOf(port: number): string | undefined {
  try {
    const inodes = new Set(
      ['/proc/net/tcp', '/proc/net/tcp6'].flatMap((table) => listeningInodes(table, port)),
    );
    if (inodes.size === 0) return undefined;
    for (const pid of readdirSync('/proc').filter((entry) => /^\d+$/.test(entry))) {
      if (socketInodesOf(pid).some((inode) => inodes.has(inode))) {
        const command = readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
        return `pid ${pid} (${command})`;
      }
    }
  } catch {
    // not Linux, or not allowed to look
  }
  return undefined;
}

function listeningInodes(table: string, port: number): string[] {
  let text: string;
  try {
    text = readFileSync(table, 'utf8');
  } catch {
    return [];
  }
  const LISTEN = '0A';
  return text
    .split('\n')
    .slice(1)
    .map((line) => line.trim().split(/\s+/))
    .filter((fields) => fields[3] === LISTEN && Number.parseInt(fields[1]?.split(':')[1] ?? '', 16) === port)
    .map((fields) => fields[9] as string);
}

function socketInodesOf(pid: string): string[] {
  try {
    return readdirSync(`/proc/${pid}/fd`).flatMap((fd) => {
      try {
        return [/^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`))?.[1] ?? ''];
      } catch {
        return [];
      }
    });
  } catch {
    return [];
  }
}
