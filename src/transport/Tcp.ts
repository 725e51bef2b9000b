/**
 * TCP client connections as `Transport`s, on `node:net`.
 *
 * @since 0.1.0
 */
import * as Duration from "effect/Duration"
import * as Config from "effect/Config"
import * as Effect from "effect/Effect"
import type * as ConfigError from "effect/ConfigError"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import * as Net from "node:net"
import * as Address from "./Address.js"
import { awaitReady, netOptions, openError, openTransport } from "./internal/open.js"
import * as Transport from "./Transport.js"
import type { TransportError } from "./TransportError.js"

/**
 * Socket tuning shared by TCP, Unix and TLS connections.
 *
 * @since 0.1.0
 * @category models
 */
export interface SocketOptions {
  /** Time allowed to connect (and, for TLS, to finish the handshake). Default: 10 seconds. */
  readonly connectTimeout?: Duration.DurationInput | undefined
  /** Bytes Node buffers for writing before writers wait for `drain`. Default: Node's (16 KiB). */
  readonly highWaterMark?: number | undefined
  /** Bytes received and not yet read before the socket is paused (the peer then waits). Default: 256 KiB. */
  readonly readHighWaterMark?: number | undefined
  /**
   * Close the connection after this long without reads or writes: pending and later operations fail with reason
   * `IdleTimeout`, and so does `closed`. Default: none.
   */
  readonly idleTimeout?: Duration.DurationInput | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface ConnectOptions extends SocketOptions {
  readonly host: string
  readonly port: number
  /** Disable Nagle's algorithm. Default: `true` (protocols here write whole frames). */
  readonly noDelay?: boolean | undefined
  /** Enable TCP keep-alive probes. Default: `false`. */
  readonly keepAlive?: boolean | undefined
  readonly keepAliveInitialDelay?: Duration.DurationInput | undefined
  /** IP version to resolve `host` to (`4` or `6`); default: either. */
  readonly family?: 4 | 6 | undefined
  readonly localAddress?: string | undefined
}

/**
 * Opens a TCP connection. The transport belongs to the current scope: closing the scope aborts it if it is
 * still open.
 *
 * Fails with reason `Connect` (with the errno code, e.g. `ECONNREFUSED`) or `ConnectTimeout`.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Tcp } from "effect-wire/transport"
 *
 * const program = Effect.scoped(Effect.gen(function*() {
 *   const transport = yield* Tcp.connect({ host: "127.0.0.1", port: 5672 })
 *   yield* transport.write(new TextEncoder().encode("AMQP\x00\x00\x09\x01"))
 *   return yield* transport.read
 * }))
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const connect = (options: ConnectOptions): Effect.Effect<Transport.Transport, TransportError, Scope.Scope> => {
  const address = Address.format(Address.tcp(options.host, options.port))
  return openTransport({
    address,
    timeout: options.connectTimeout,
    open: () => Net.connect(netOptions(options)),
    handshake: (raw) => awaitReady(raw, "connect", openError(address, raw)).pipe(Effect.as(raw)),
    adapter: { readHighWaterMark: options.readHighWaterMark, idleTimeout: options.idleTimeout },
    resettable: true,
    kind: "tcp"
  }).pipe(
    Effect.withSpan("Tcp.connect", {
      kind: "client",
      attributes: { "network.transport": "tcp", "server.address": options.host, "server.port": options.port }
    })
  )
}

/**
 * A connection as the `CurrentTransport` of a program, open for the layer's lifetime.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: ConnectOptions): Layer.Layer<Transport.CurrentTransport, TransportError> =>
  Layer.scoped(Transport.CurrentTransport, connect(options))

/**
 * `layer` with its options read from `Config` (e.g. `Config.all({ host: Config.string("HOST"), port: Config.port("PORT") })`).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  config: Config.Config.Wrap<ConnectOptions>
): Layer.Layer<Transport.CurrentTransport, TransportError | ConfigError.ConfigError> =>
  Layer.unwrapEffect(Effect.map(Config.unwrap(config), layer))
