/**
 * The options of `dashboard()`, their defaults, and their validation: a bad option throws
 * `InvalidArgumentError` before anything is served.
 * @module
 */
import { InvalidArgumentError } from '../index.js';

/**
 * What a request asks to do, as `authorize` is told: `view` for every read (pages, assets, the
 * JSON API, the live stream), one action name for each kind of mutation.
 */
export type DashboardAction = 'view' | 'retry' | 'cancel' | 'delete' | 'pause' | 'resume' | 'signal' | 'prune';

/** Every action name, `view` first. */
export const DASHBOARD_ACTIONS: readonly DashboardAction[] = ['view', 'retry', 'cancel', 'delete', 'pause', 'resume', 'signal', 'prune'];

/**
 * Decides whether a request may do `action`. Asked for every request, reads, pages and assets
 * included; only `true` (or a promise of `true`) allows: any other answer (`1`, `'yes'`, an
 * object), a rejection or a throw denies it (403). The request is the Web `Request` (for the
 * Node handler, one built from the Node request, with the same method, URL and headers); leave
 * its body unread.
 */
export type DashboardAuthorize = (request: Request, action: DashboardAction) => boolean | Promise<boolean>;

/** Which payloads the dashboard hides from every response (and so from every page). */
export interface RedactOptions {
  /** Hide job args and meta, and signal payloads. @default false */
  args?: boolean;
  /** Hide job results, checkpoint outputs and progress messages. @default false */
  results?: boolean;
  /** Hide error texts (`lastError`, step errors); also refuses `search`, which matches them. @default false */
  errors?: boolean;
}

/** Options of `dashboard()`. */
export interface DashboardOptions {
  /**
   * Where the dashboard is mounted: every path it serves starts with it (`/jobs` serves
   * `/jobs/`, `/jobs/api/...`). Letters, digits and `-._~/` only; no trailing slash.
   * @default '' (the root)
   */
  basePath?: string;
  /**
   * Decides every request (see {@link DashboardAuthorize}). Required unless `insecure: true`.
   * @example authorize: (req, action) => action === 'view' || isAdmin(req)
   */
  authorize?: DashboardAuthorize;
  /**
   * Serve without `authorize`: every request is allowed. Only for a dashboard that nothing but
   * trusted people can reach (`sdj dashboard` on 127.0.0.1). Cross-site mutations are still refused.
   * @default false
   */
  insecure?: boolean;
  /** Refuse every mutation (403) and hide every control that would make one. @default false */
  readOnly?: boolean;
  /** Hide payloads: `true` hides args, results and errors; an object picks. @default false */
  redact?: boolean | RedactOptions;
  /**
   * How often the live feed reads the counts and queues (one read per interval per dashboard,
   * however many pages are open; none while no page is open), in ms, 250 to 60 000.
   * @default 2000
   */
  pollInterval?: number;
  /**
   * Origins (`https://ops.example.com`) besides the request's own that may send mutations: for
   * a reverse proxy that rewrites the Host header. Browsers that send `Sec-Fetch-Site` are
   * checked by it instead. @default []
   */
  trustedOrigins?: readonly string[];
  /**
   * Host names the dashboard answers (`localhost`, `127.0.0.1`, `[::1]`, `ops.example.com`; a
   * leading dot, `.localhost`, also takes every subdomain). A request whose `Host` names another
   * is refused (403 `HOST_NOT_ALLOWED`) before anything else: this stops DNS rebinding, where a
   * page of another site points its own name at the dashboard's address. Give it when the
   * dashboard has no login of its own. @default any host
   */
  allowedHosts?: readonly string[];
  /**
   * Called with every error that the dashboard answers with a 500, and with its request: the
   * answer names the error's code only, since driver messages can hold table names, addresses
   * or stored values. A throw from it is ignored. @default none
   * @example onError: (e, req) => logger.error({ err: e, url: req.url }, 'dashboard request failed')
   */
  onError?: (error: unknown, request: Request) => void;
}

/** The options once checked, with their defaults. @internal */
export interface ResolvedOptions {
  basePath: string;
  authorize: DashboardAuthorize | undefined;
  readOnly: boolean;
  redact: Required<RedactOptions>;
  pollInterval: number;
  trustedOrigins: ReadonlySet<string>;
  /** Host names, and `.suffix` entries for subdomains; undefined: any host. */
  allowedHosts: readonly string[] | undefined;
  onError: ((error: unknown, request: Request) => void) | undefined;
}

const KNOWN = ['basePath', 'authorize', 'insecure', 'readOnly', 'redact', 'pollInterval', 'trustedOrigins', 'allowedHosts', 'onError'];
const BASE_PATH = /^(\/[A-Za-z0-9\-._~]+)*$/;

/** Checks the options and fills in the defaults. @throws InvalidArgumentError @internal */
export function resolveOptions(options: unknown): ResolvedOptions {
  if (options === undefined) options = {};
  if (typeof options !== 'object' || options === null || Array.isArray(options)) throw new InvalidArgumentError('dashboard options must be an object');
  const o = options as Record<string, unknown>;
  for (const k of Object.keys(o)) if (!KNOWN.includes(k)) throw new InvalidArgumentError(`unknown dashboard option "${k}" (expected ${KNOWN.join(', ')})`);
  const authorize = o['authorize'];
  if (authorize !== undefined && typeof authorize !== 'function') throw new InvalidArgumentError('dashboard option authorize must be a function (request, action) => boolean');
  const insecure = flag(o, 'insecure');
  if (authorize === undefined && !insecure) {
    throw new InvalidArgumentError('dashboard() needs authorize(request, action), or insecure: true to serve everyone who can reach it');
  }
  return {
    basePath: basePathOf(o['basePath']),
    authorize: authorize as DashboardAuthorize | undefined,
    readOnly: flag(o, 'readOnly'),
    redact: redactOf(o['redact']),
    pollInterval: intervalOf(o['pollInterval']),
    trustedOrigins: originsOf(o['trustedOrigins']),
    allowedHosts: hostsOf(o['allowedHosts']),
    onError: onErrorOf(o['onError']),
  };
}

function flag(o: Record<string, unknown>, name: string): boolean {
  const v = o[name];
  if (v === undefined) return false;
  if (typeof v !== 'boolean') throw new InvalidArgumentError(`dashboard option ${name} must be a boolean`);
  return v;
}

function basePathOf(v: unknown): string {
  if (v === undefined) return '';
  if (typeof v !== 'string') throw new InvalidArgumentError('dashboard option basePath must be a string');
  const path = v === '/' ? '' : v.replace(/\/$/, '');
  if (!BASE_PATH.test(path) || path.split('/').some((s) => s === '.' || s === '..')) {
    throw new InvalidArgumentError(`dashboard option basePath must look like "/jobs" (letters, digits, -._~ between slashes), got ${JSON.stringify(v)}`);
  }
  return path;
}

function redactOf(v: unknown): Required<RedactOptions> {
  if (v === undefined || v === false) return { args: false, results: false, errors: false };
  if (v === true) return { args: true, results: true, errors: true };
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new InvalidArgumentError('dashboard option redact must be a boolean or { args?, results?, errors? }');
  const r = v as Record<string, unknown>;
  for (const k of Object.keys(r)) {
    if (k !== 'args' && k !== 'results' && k !== 'errors') throw new InvalidArgumentError(`unknown redact option "${k}" (expected args, results, errors)`);
  }
  return { args: flag(r, 'args'), results: flag(r, 'results'), errors: flag(r, 'errors') };
}

function intervalOf(v: unknown): number {
  if (v === undefined) return 2000;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 250 || v > 60_000) {
    throw new InvalidArgumentError(`dashboard option pollInterval must be a whole number of ms from 250 to 60000, got ${String(v)}`);
  }
  return v;
}

function originsOf(v: unknown): ReadonlySet<string> {
  if (v === undefined) return new Set();
  if (!Array.isArray(v)) throw new InvalidArgumentError('dashboard option trustedOrigins must be an array of origins');
  const out = new Set<string>();
  for (const item of v as unknown[]) {
    let origin: string | undefined;
    try {
      origin = typeof item === 'string' ? new URL(item).origin : undefined;
    } catch {
      origin = undefined;
    }
    if (origin === undefined || origin === 'null' || origin !== (item as string).replace(/\/$/, '')) {
      throw new InvalidArgumentError(`dashboard option trustedOrigins: ${JSON.stringify(item)} is not an origin like "https://ops.example.com"`);
    }
    out.add(origin);
  }
  return out;
}

function hostsOf(v: unknown): readonly string[] | undefined {
  if (v === undefined) return undefined;
  if (!Array.isArray(v)) throw new InvalidArgumentError('dashboard option allowedHosts must be an array of host names');
  return (v as unknown[]).map((item) => {
    const name = typeof item === 'string' ? item.replace(/^\./, '') : '';
    let host: string | undefined;
    try {
      host = name === '' ? undefined : new URL(`http://${name}`).hostname;
    } catch {
      host = undefined;
    }
    if (host === undefined || host !== name.toLowerCase() || !/^([a-z0-9_-]+\.)*[a-z0-9_-]+$|^\[[0-9a-f:.]+\]$/.test(host)) {
      throw new InvalidArgumentError(`dashboard option allowedHosts: ${JSON.stringify(item)} is not a host name like "localhost", "127.0.0.1", "[::1]" or ".example.com" (no scheme, no port)`);
    }
    return (item as string).startsWith('.') ? `.${host}` : host;
  });
}

function onErrorOf(v: unknown): ((error: unknown, request: Request) => void) | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'function') throw new InvalidArgumentError('dashboard option onError must be a function (error, request) => void');
  return v as (error: unknown, request: Request) => void;
}
