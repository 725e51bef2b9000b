/**
 * AMQP URIs: `amqp[s]://user:password@host:port/vhost?query`, per RabbitMQ's URI spec.
 *
 * - user, password and vhost are percent-decoded; the vhost is the single path segment without its leading `/`
 *   (`/%2f` is `/`, `/prod` is `prod`). No path and an empty path (`amqp://host/`) both mean the default vhost
 *   `/`, as every Node client does (the spec would make the latter the empty vhost).
 * - IPv6 hosts go in brackets; default ports are 5672 (`amqp`) and 5671 (`amqps`); no userinfo means
 *   `guest`/`guest`.
 * - Query names: RabbitMQ's `heartbeat` (seconds, `0` disables), `connection_timeout` (ms), `channel_max`,
 *   `frame_max`, `auth_mechanism` (repeatable), `connection_name`, the TLS names `cacertfile`, `certfile`,
 *   `keyfile`, `verify`, `server_name_indication`, `fail_if_no_peer_cert`, `depth`, `password`; and the camelCase
 *   spellings of amqplib and amqp-client.js (`frameMax`, `channelMax`, `connectionTimeout`, `name`, `locale`,
 *   `insecure`). Unknown names are ignored.
 *
 * @since 0.1.0
 */
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as ParseResult from "effect/ParseResult"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"

/**
 * Why a URI was refused.
 *
 * @since 0.1.0
 * @category errors
 */
export class UriError extends Data.TaggedError("UriError")<{
  readonly reason: "Syntax" | "Scheme" | "Port" | "Vhost" | "Encoding" | "Query" | "File"
  readonly detail: string
}> {
  override get message(): string {
    return `invalid AMQP URI (${this.reason}): ${this.detail}`
  }
}

/**
 * A SASL mechanism named in a URI (`auth_mechanism=plain`).
 *
 * @since 0.1.0
 * @category models
 */
export type MechanismName = "PLAIN" | "AMQPLAIN" | "EXTERNAL" | "ANONYMOUS"

/**
 * TLS settings from the query (RabbitMQ's names); paths are left for the TLS transport to read.
 *
 * @since 0.1.0
 * @category models
 */
export interface TlsQuery {
  readonly caFile?: string
  readonly certFile?: string
  readonly keyFile?: string
  /** Passphrase of the key file. */
  readonly passphrase?: Redacted.Redacted<string>
  /** `false` for `verify=verify_none` or `insecure=true`. */
  readonly verify?: boolean
  readonly serverName?: string
  readonly failIfNoPeerCert?: boolean
  readonly depth?: number
}

/**
 * A parsed AMQP URI. Only settings present in the URI are set, except the address, credentials and vhost, which
 * take the spec's defaults.
 *
 * @since 0.1.0
 * @category models
 */
export interface Uri {
  readonly tls: boolean
  readonly host: string
  readonly port: number
  readonly username: string
  readonly password: Redacted.Redacted<string>
  readonly vhost: string
  /** Seconds; `"disabled"` for `heartbeat=0`. */
  readonly heartbeat?: Duration.Duration | "disabled"
  readonly connectionTimeout?: Duration.Duration
  readonly channelMax?: number
  readonly frameMax?: number
  readonly authMechanisms?: ReadonlyArray<MechanismName>
  readonly connectionName?: string
  readonly locale?: string
  readonly tlsOptions?: TlsQuery
}

const pattern = /^([A-Za-z][A-Za-z0-9+.-]*):\/\/(?:([^@/?#]*)@)?(\[[^\]/?#]*\]|[^:/?#]*)(?::([^/?#]*))?(\/[^?#]*)?(?:\?([^#]*))?(?:#.*)?$/

const decode = (part: string, what: string): Either.Either<string, UriError> => {
  try {
    return Either.right(decodeURIComponent(part))
  } catch {
    return Either.left(new UriError({ reason: "Encoding", detail: `malformed percent-encoding in ${what}` }))
  }
}

const integer = (key: string, value: string, min: number, max: number): Either.Either<number, UriError> => {
  if (!/^\d+$/.test(value)) return Either.left(new UriError({ reason: "Query", detail: `${key}=${value} is not an integer` }))
  const n = Number(value)
  return n < min || n > max
    ? Either.left(new UriError({ reason: "Query", detail: `${key}=${value} is outside ${min}..${max}` }))
    : Either.right(n)
}

const boolean = (key: string, value: string): Either.Either<boolean, UriError> => {
  const v = value.toLowerCase()
  if (v === "true" || v === "1") return Either.right(true)
  if (v === "false" || v === "0") return Either.right(false)
  return Either.left(new UriError({ reason: "Query", detail: `${key}=${value} is not a boolean` }))
}

const mechanisms: ReadonlyArray<MechanismName> = ["PLAIN", "AMQPLAIN", "EXTERNAL", "ANONYMOUS"]

type Mutable<T> = { -readonly [K in keyof T]: T[K] }

const applyQuery = (
  query: string,
  uri: Mutable<Uri>
): Either.Either<void, UriError> => {
  const tls: Mutable<TlsQuery> = {}
  const auth: Array<MechanismName> = []
  for (const pair of query.split("&")) {
    if (pair === "") continue
    const eq = pair.indexOf("=")
    const rawKey = eq === -1 ? pair : pair.slice(0, eq)
    const rawValue = eq === -1 ? "" : pair.slice(eq + 1)
    const key = decode(rawKey.replace(/\+/g, " "), "a query name")
    if (Either.isLeft(key)) return key
    const value = decode(rawValue.replace(/\+/g, " "), `query ${key.right}`)
    if (Either.isLeft(value)) return value
    const k = key.right
    const v = value.right
    let result: Either.Either<unknown, UriError> = Either.right(undefined)
    switch (k) {
      case "heartbeat":
        result = Either.map(integer(k, v, 0, 65535), (n) => {
          uri.heartbeat = n === 0 ? "disabled" : Duration.seconds(n)
        })
        break
      case "connection_timeout":
      case "connectionTimeout":
        result = Either.map(integer(k, v, 0, 2 ** 31 - 1), (n) => {
          uri.connectionTimeout = Duration.millis(n)
        })
        break
      case "channel_max":
      case "channelMax":
        result = Either.map(integer(k, v, 0, 65535), (n) => {
          uri.channelMax = n
        })
        break
      case "frame_max":
      case "frameMax":
        result = Either.map(integer(k, v, 0, 2 ** 32 - 1), (n) => {
          uri.frameMax = n
        })
        break
      case "auth_mechanism":
      case "authMechanism": {
        const name = v.toUpperCase()
        const found = mechanisms.find((m) => m === name)
        if (found === undefined) {
          result = Either.left(new UriError({ reason: "Query", detail: `unknown auth_mechanism ${v}` }))
        } else if (!auth.includes(found)) auth.push(found)
        break
      }
      case "connection_name":
      case "name":
        uri.connectionName = v
        break
      case "locale":
        uri.locale = v
        break
      case "cacertfile":
        tls.caFile = v
        break
      case "certfile":
        tls.certFile = v
        break
      case "keyfile":
        tls.keyFile = v
        break
      case "password":
        tls.passphrase = Redacted.make(v)
        break
      case "verify":
        if (v === "verify_peer") tls.verify = true
        else if (v === "verify_none") tls.verify = false
        else result = Either.left(new UriError({ reason: "Query", detail: `verify=${v} (expected verify_peer or verify_none)` }))
        break
      case "insecure":
        result = Either.map(boolean(k, v === "" ? "true" : v), (b) => {
          tls.verify = !b
        })
        break
      case "server_name_indication":
        if (v !== "disable") tls.serverName = v
        break
      case "fail_if_no_peer_cert":
        result = Either.map(boolean(k, v), (b) => {
          tls.failIfNoPeerCert = b
        })
        break
      case "depth":
        result = Either.map(integer(k, v, 0, 255), (n) => {
          tls.depth = n
        })
        break
    }
    if (Either.isLeft(result)) return Either.left(result.left)
  }
  if (auth.length > 0) uri.authMechanisms = auth
  if (Object.keys(tls).length > 0) uri.tlsOptions = tls
  return Either.right(undefined)
}

/**
 * Parses an AMQP URI.
 *
 * @example
 * ```ts
 * import * as Uri from "effect-wire/amqp/Uri"
 *
 * Uri.parseEither("amqp://u%40x:p%3Ab@[::1]:5673/%2f?heartbeat=5&frameMax=8192")
 * // Right({ host: "::1", port: 5673, username: "u@x", vhost: "/", frameMax: 8192, … })
 * ```
 *
 * @since 0.1.0
 * @category parsing
 */
export const parseEither = (input: string): Either.Either<Uri, UriError> => {
  const m = pattern.exec(input.trim())
  if (m === null) return Either.left(new UriError({ reason: "Syntax", detail: "expected amqp[s]://[user[:password]@]host[:port][/vhost][?query]" }))
  const [, scheme, userinfo, rawHost, rawPort, rawPath, query] = m
  const lower = scheme!.toLowerCase()
  if (lower !== "amqp" && lower !== "amqps") {
    return Either.left(new UriError({ reason: "Scheme", detail: `scheme ${scheme} (expected amqp or amqps)` }))
  }
  const tls = lower === "amqps"
  let port = tls ? 5671 : 5672
  if (rawPort !== undefined && rawPort !== "") {
    if (!/^\d+$/.test(rawPort) || Number(rawPort) < 1 || Number(rawPort) > 65535) {
      return Either.left(new UriError({ reason: "Port", detail: `port ${rawPort}` }))
    }
    port = Number(rawPort)
  }
  let host = rawHost!.startsWith("[") ? rawHost!.slice(1, -1) : rawHost!
  if (!rawHost!.startsWith("[")) {
    const decoded = decode(host, "the host")
    if (Either.isLeft(decoded)) return Either.left(decoded.left)
    host = decoded.right
  }
  if (host === "") host = "localhost"
  let username = "guest"
  let password = "guest"
  if (userinfo !== undefined) {
    const colon = userinfo.indexOf(":")
    const user = decode(colon === -1 ? userinfo : userinfo.slice(0, colon), "the user name")
    if (Either.isLeft(user)) return Either.left(user.left)
    username = user.right
    if (colon === -1) password = ""
    else {
      const pass = decode(userinfo.slice(colon + 1), "the password")
      if (Either.isLeft(pass)) return Either.left(pass.left)
      password = pass.right
    }
  }
  let vhost = "/"
  if (rawPath !== undefined && rawPath.length > 1) {
    const segment = rawPath.slice(1)
    if (segment.includes("/")) {
      return Either.left(new UriError({ reason: "Vhost", detail: `path ${rawPath} has more than one segment; encode "/" in a vhost as %2f` }))
    }
    const decoded = decode(segment, "the vhost")
    if (Either.isLeft(decoded)) return Either.left(decoded.left)
    vhost = decoded.right
  }
  const uri: Mutable<Uri> = { tls, host, port, username, password: Redacted.make(password), vhost }
  if (query !== undefined) {
    const applied = applyQuery(query, uri)
    if (Either.isLeft(applied)) return Either.left(applied.left)
  }
  return Either.right(uri)
}

/**
 * Parses an AMQP URI, failing with `UriError`.
 *
 * @since 0.1.0
 * @category parsing
 */
export const parse = (input: string | Redacted.Redacted<string>): Effect.Effect<Uri, UriError> =>
  Effect.suspend(() => parseEither(Redacted.isRedacted(input) ? Redacted.value(input) : input))

const UriDeclaration = Schema.declare((u: unknown): u is Uri =>
  typeof u === "object" && u !== null && "host" in u && "vhost" in u && "port" in u, {
  identifier: "AmqpUri"
})

/**
 * A `Schema` from a URI string to a parsed `Uri`; encoding formats the address part back into a URI without the
 * password.
 *
 * @since 0.1.0
 * @category schemas
 */
export const UriFromString: Schema.Schema<Uri, string> = Schema.transformOrFail(Schema.String, UriDeclaration, {
  strict: true,
  decode: (s, _, ast) =>
    Either.mapLeft(parseEither(s), (e) => new ParseResult.Type(ast, s, e.message)),
  encode: (uri) => ParseResult.succeed(format(uri))
})

/**
 * Formats the address of a URI (`amqp://user@host:port/vhost`), leaving out the password and the query: safe to
 * log.
 *
 * @since 0.1.0
 * @category formatting
 */
export const format = (uri: Uri): string => {
  const host = uri.host.includes(":") ? `[${uri.host}]` : uri.host
  const defaultPort = uri.tls ? 5671 : 5672
  return `${uri.tls ? "amqps" : "amqp"}://${encodeURIComponent(uri.username)}@${host}` +
    (uri.port === defaultPort ? "" : `:${uri.port}`) + `/${encodeURIComponent(uri.vhost)}`
}
