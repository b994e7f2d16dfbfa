import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { statusPageHtml, statusPageScriptHash } from './status-page.js';

export interface Readiness {
  ready: boolean;
  /** Why not, in words an operator can act on. */
  reasons: string[];
}

/** Answers a GET of /metrics (a Prometheus exporter's request handler). */
export type MetricsEndpoint = (request: IncomingMessage, response: ServerResponse) => void;

export interface HealthSource {
  /** Liveness: false only when restarting the process is the fix. */
  alive(): boolean;
  readiness(): Readiness;
  /** The status document; without it neither /status nor the status page is served (http.status=off). */
  status?: () => unknown;
  metrics?: MetricsEndpoint;
}

/**
 * The HTTP endpoints an orchestrator and an operator need:
 * - `GET /healthz` (liveness): 200 while the process can go on, 503 once it has failed for good;
 * - `GET /readyz` (readiness): 200 while records are flowing, 503 with the reasons otherwise (database unreachable,
 *   consumption stopped by a systemic error or the breaker, starting, draining);
 * - `GET /status`: the status document (state, batching, lag, committed offsets, DLQ counts);
 * - `GET /metrics`: the metrics in Prometheus's text format, when the service exports them;
 * - `GET /`: the status page (status-page.ts), which shows /status live.
 */
export class HealthServer {
  readonly #server: Server;
  readonly #log: Logger;
  /** The endpoints served, for the start-up log and a 404's hint. */
  readonly #paths: string[];

  constructor(source: HealthSource, log: Logger) {
    this.#log = log;
    this.#paths = ['/healthz', '/readyz', ...(source.status ? ['/', '/status'] : []), ...(source.metrics ? ['/metrics'] : [])];
    this.#server = createServer((request, response) => this.#handle(source, request, response));
  }

  /** Listens on `port` (0 picks a free one); resolves with the bound address. */
  listen(port: number, host: string): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      const onError = (error: Error) => reject(error);
      this.#server.once('error', onError);
      this.#server.listen(port, host, () => {
        this.#server.off('error', onError);
        const address = this.#server.address() as AddressInfo;
        this.#log.info({ host: address.address, port: address.port, paths: this.#paths }, 'HTTP endpoints listening');
        resolve(address);
      });
    });
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      if (!this.#server.listening) {
        resolve();
        return;
      }
      this.#server.close(() => resolve());
      this.#server.closeAllConnections();
    });
  }

  #handle(source: HealthSource, request: IncomingMessage, response: ServerResponse): void {
    const path = (request.url ?? '/').split('?')[0];
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      send(response, 405, { error: 'only GET' });
      return;
    }
    try {
      if (path === '/healthz') {
        const alive = source.alive();
        send(response, alive ? 200 : 503, { alive });
      } else if (path === '/readyz') {
        const readiness = source.readiness();
        send(response, readiness.ready ? 200 : 503, readiness);
      } else if (path === '/status' && source.status) {
        send(response, 200, source.status());
      } else if ((path === '/' || path === '/index.html') && source.status) {
        response.writeHead(200, {
          'content-type': 'text/html; charset=utf-8',
          'content-length': Buffer.byteLength(statusPageHtml),
          'cache-control': 'no-store',
          // The page runs its own script only (by hash) and talks to this server only; nothing may frame it.
          'content-security-policy': `default-src 'none'; script-src '${statusPageScriptHash}'; style-src 'unsafe-inline'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'`,
          'x-content-type-options': 'nosniff',
        });
        response.end(request.method === 'HEAD' ? undefined : statusPageHtml);
      } else if (path === '/metrics' && source.metrics) {
        source.metrics(request, response);
      } else {
        send(response, 404, { error: `no such endpoint ${path}; try ${this.#paths.filter((p) => p !== '/').join(', ')}` });
      }
    } catch (error) {
      this.#log.error({ err: error, path }, 'health endpoint failed');
      send(response, 500, { error: 'internal error' });
    }
  }
}

function send(response: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  response.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' });
  response.end(text);
}
