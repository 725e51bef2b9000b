/**
 * Unix domain socket client connections as `Transport`s, on `node:net`.
 *
 * Unix sockets have no reset: `abort` closes at once and the peer reads `Eof` (its writes then fail with
 * `EPIPE`).
 *
 * @since 0.1.0
 */
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import * as Net from "node:net"
import * as Address from "./Address.js"
import { awaitReady, openError, openTransport } from "./internal/open.js"
import type { SocketOptions } from "./Tcp.js"
import * as Transport from "./Transport.js"
import type { TransportError } from "./TransportError.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface ConnectOptions extends SocketOptions {
  /** The socket's path (on Linux, a leading `\0` names an abstract socket). */
  readonly path: string
}

/**
 * Connects to a Unix domain socket. The transport belongs to the current scope.
 *
 * @since 0.1.0
 * @category constructors
 */
export const connect = (options: ConnectOptions): Effect.Effect<Transport.Transport, TransportError, Scope.Scope> =>
  openTransport({
    address: options.path,
    timeout: options.connectTimeout,
    open: () =>
      Net.connect({
        path: options.path,
        allowHalfOpen: true,
        ...(options.highWaterMark !== undefined ? { highWaterMark: options.highWaterMark } : {})
      }),
    handshake: (raw) => awaitReady(raw, "connect", openError(options.path, raw)).pipe(Effect.as(raw)),
    adapter: {
      readHighWaterMark: options.readHighWaterMark,
      idleTimeout: options.idleTimeout,
      local: Address.unix(""),
      remote: Address.unix(options.path)
    },
    resettable: false,
    kind: "unix"
  }).pipe(Effect.withSpan("Unix.connect", { kind: "client", attributes: { "network.transport": "unix", "server.address": options.path } }))

/**
 * A connection as the `CurrentTransport` of a program, open for the layer's lifetime.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: ConnectOptions): Layer.Layer<Transport.CurrentTransport, TransportError> =>
  Layer.scoped(Transport.CurrentTransport, connect(options))

/**
 * `layer` with its options read from `Config`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  config: Config.Config.Wrap<ConnectOptions>
): Layer.Layer<Transport.CurrentTransport, TransportError | ConfigError.ConfigError> =>
  Layer.unwrapEffect(Effect.map(Config.unwrap(config), layer))
