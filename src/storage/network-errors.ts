/**
 * Socket-level failures shared by the networked drivers (PostgreSQL, MySQL/MariaDB): the
 * connection was reset, refused, timed out or closed under the call. Such a failure says
 * nothing about the statement that was running, so the driver marks its `StorageError`
 * transient.
 * @internal
 */

/** Node.js socket error codes after which the same call may succeed on another connection. */
const NETWORK_CODES = new Set(['ECONNRESET', 'ECONNREFUSED', 'ECONNABORTED', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTCONN', 'EAI_AGAIN']);

/** True when `code` is a Node.js socket error code of a lost or refused connection. */
export function isNetworkCode(code: unknown): boolean {
  return typeof code === 'string' && NETWORK_CODES.has(code);
}
