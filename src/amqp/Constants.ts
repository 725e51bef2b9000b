/**
 * Protocol constants and reply codes of AMQP 0-9-1 with RabbitMQ's values, as data.
 *
 * @since 0.1.0
 */

/**
 * @since 0.1.0
 * @category frame types
 */
export const FRAME_METHOD = 1

/**
 * @since 0.1.0
 * @category frame types
 */
export const FRAME_HEADER = 2

/**
 * @since 0.1.0
 * @category frame types
 */
export const FRAME_BODY = 3

/**
 * The heartbeat frame type: 8 as in the XML and every broker (the 0-9-1 PDF's 4 is an erratum).
 *
 * @since 0.1.0
 * @category frame types
 */
export const FRAME_HEARTBEAT = 8

/**
 * The octet that ends every frame.
 *
 * @since 0.1.0
 * @category constants
 */
export const FRAME_END = 0xce

/**
 * Bytes a frame adds around its payload: type, channel, size and frame-end.
 *
 * @since 0.1.0
 * @category constants
 */
export const FRAME_OVERHEAD = 8

/**
 * The smallest `frame_max` a peer must accept: 4096 in the spec, 8192 in RabbitMQ 4.1 and later (also the size
 * RabbitMQ accepts before `tune-ok`).
 *
 * @since 0.1.0
 * @category constants
 */
export const FRAME_MIN_SIZE = 8192

/**
 * The spec's original `FRAME-MIN-SIZE`.
 *
 * @since 0.1.0
 * @category constants
 */
export const FRAME_MIN_SIZE_SPEC = 4096

/**
 * A sensible `frame_max` for clients (RabbitMQ's default).
 *
 * @since 0.1.0
 * @category constants
 */
export const FRAME_MAX_DEFAULT = 131072

/**
 * @since 0.1.0
 * @category constants
 */
export const PORT = 5672

/**
 * @since 0.1.0
 * @category constants
 */
export const PORT_TLS = 5671

/**
 * The 8 bytes a client sends first: `"AMQP" 0 0 9 1`.
 *
 * @since 0.1.0
 * @category constants
 */
export const PROTOCOL_HEADER: Uint8Array = Uint8Array.of(0x41, 0x4d, 0x51, 0x50, 0, 0, 9, 1)

/**
 * Whether a reply code normally closes a channel (`soft`) or the connection (`hard`). Classify a close by the
 * method that carried it, not by this: 403 is soft yet arrives in `connection.close` on authentication failure.
 *
 * @since 0.1.0
 * @category reply codes
 */
export type ReplyCodeClass = "success" | "soft" | "hard"

/**
 * @since 0.1.0
 * @category reply codes
 */
export interface ReplyCodeInfo {
  readonly code: number
  readonly name: ReplyCodeName
  readonly class: ReplyCodeClass
  readonly description: string
}

/**
 * The reply codes of AMQP 0-9-1, as data.
 *
 * @since 0.1.0
 * @category reply codes
 */
export const replyCodes = [
  { code: 200, name: "REPLY_SUCCESS", class: "success", description: "normal close" },
  { code: 311, name: "CONTENT_TOO_LARGE", class: "soft", description: "content too big for the server" },
  { code: 312, name: "NO_ROUTE", class: "soft", description: "a mandatory message could not be routed" },
  { code: 313, name: "NO_CONSUMERS", class: "soft", description: "an immediate message had no consumer" },
  { code: 320, name: "CONNECTION_FORCED", class: "hard", description: "an operator or a shutdown closed the connection" },
  { code: 402, name: "INVALID_PATH", class: "hard", description: "unknown virtual host" },
  { code: 403, name: "ACCESS_REFUSED", class: "soft", description: "access refused (also authentication failure)" },
  { code: 404, name: "NOT_FOUND", class: "soft", description: "no such exchange or queue" },
  { code: 405, name: "RESOURCE_LOCKED", class: "soft", description: "exclusive queue owned by another connection" },
  { code: 406, name: "PRECONDITION_FAILED", class: "soft", description: "inequivalent arguments, unknown delivery tag, limit, …" },
  { code: 501, name: "FRAME_ERROR", class: "hard", description: "malformed frame" },
  { code: 502, name: "SYNTAX_ERROR", class: "hard", description: "bad field values" },
  { code: 503, name: "COMMAND_INVALID", class: "hard", description: "method not valid in this state" },
  { code: 504, name: "CHANNEL_ERROR", class: "hard", description: "bad channel state" },
  { code: 505, name: "UNEXPECTED_FRAME", class: "hard", description: "frame not expected now" },
  { code: 506, name: "RESOURCE_ERROR", class: "hard", description: "server out of resources" },
  { code: 530, name: "NOT_ALLOWED", class: "hard", description: "not allowed (virtual host access, …)" },
  { code: 540, name: "NOT_IMPLEMENTED", class: "hard", description: "not implemented by the server" },
  { code: 541, name: "INTERNAL_ERROR", class: "hard", description: "internal server error" }
] as const satisfies ReadonlyArray<{ code: number; name: string; class: ReplyCodeClass; description: string }>

/**
 * @since 0.1.0
 * @category reply codes
 */
export type ReplyCodeName = (typeof replyCodes)[number]["name"]

/**
 * Reply codes by name: `ReplyCode.NOT_FOUND === 404`.
 *
 * @since 0.1.0
 * @category reply codes
 */
export const ReplyCode: { readonly [K in ReplyCodeName]: Extract<(typeof replyCodes)[number], { name: K }>["code"] } =
  Object.fromEntries(replyCodes.map((r) => [r.name, r.code])) as {
    readonly [K in ReplyCodeName]: Extract<(typeof replyCodes)[number], { name: K }>["code"]
  }

const byCode = new Map<number, ReplyCodeInfo>(replyCodes.map((r) => [r.code, r]))

/**
 * What a reply code means; `undefined` for codes outside the spec (which a peer may still send).
 *
 * @since 0.1.0
 * @category reply codes
 */
export const replyCodeInfo = (code: number): ReplyCodeInfo | undefined => byCode.get(code)
