/**
 * UDP datagram sockets on `node:dgram`, as a scoped service.
 *
 * UDP has no flow control and `dgram` cannot pause, so what arrives while nobody receives goes into a bounded
 * buffer: when it is full, new datagrams are dropped (or replace the oldest, with `overflow: "sliding"`) and
 * counted in `dropped`. Memory stays bounded however fast the peers send.
 *
 * @example
 * ```ts
 * import { Datagram } from "effect-wire/transport"
 * import { Effect } from "effect"
 *
 * const echo = Effect.gen(function*() {
 *   const socket = yield* Datagram.make({ host: "127.0.0.1", port: 9999 })
 *   while (true) {
 *     const { data, address } = yield* socket.receive
 *     yield* socket.send(data, address)
 *   }
 * }).pipe(Effect.scoped)
 * ```
 *
 * @since 0.1.0
 */
import * as Chunk from "effect/Chunk"
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Predicate from "effect/Predicate"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as Dgram from "node:dgram"
import { ReceiveBuffer } from "./internal/receiveBuffer.js"
import { fromNodeError, TransportError } from "./TransportError.js"

/**
 * @since 0.1.0
 * @category type ids
 */
export const TypeId: unique symbol = Symbol.for("effect-wire/transport/Datagram")

/**
 * @since 0.1.0
 * @category type ids
 */
export type TypeId = typeof TypeId

/**
 * A UDP endpoint.
 *
 * @since 0.1.0
 * @category models
 */
export interface UdpAddress {
  readonly _tag: "UdpAddress"
  readonly host: string
  readonly port: number
}

/**
 * @since 0.1.0
 * @category constructors
 */
export const udp = (host: string, port: number): UdpAddress => ({ _tag: "UdpAddress", host, port })

/**
 * `host:port`, IPv6 hosts in brackets.
 *
 * @since 0.1.0
 * @category formatting
 */
export const format = (address: UdpAddress): string =>
  address.host.includes(":") ? `[${address.host}]:${address.port}` : `${address.host}:${address.port}`

/**
 * One received datagram and where it came from.
 *
 * @since 0.1.0
 * @category models
 */
export interface Message {
  readonly data: Uint8Array
  readonly address: UdpAddress
}

/**
 * @since 0.1.0
 * @category models
 */
export interface DatagramInfo {
  readonly local: UdpAddress
  /** The connected peer, if the socket is connected. */
  readonly remote: UdpAddress | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface MulticastOptions {
  /** Groups to join at bind time, optionally on a given local interface address. */
  readonly groups?: ReadonlyArray<string | { readonly group: string; readonly interface?: string | undefined }> | undefined
  /** The local interface address outgoing multicast is sent from. */
  readonly interface?: string | undefined
  /** IP_MULTICAST_TTL. Node's default: 1. */
  readonly ttl?: number | undefined
  /** Whether this host receives its own multicast. Node's default: true. */
  readonly loopback?: boolean | undefined
}

/**
 * Options of `make`.
 *
 * @since 0.1.0
 * @category models
 */
export interface DatagramOptions {
  /** Address family. Default: `"udp4"`. */
  readonly type?: "udp4" | "udp6" | undefined
  /** Local address to bind. Default: all interfaces. */
  readonly host?: string | undefined
  /** Local port to bind; 0 picks a free port. Default: 0. */
  readonly port?: number | undefined
  /** SO_REUSEADDR, to share a port (multicast receivers). Default: false. */
  readonly reuseAddr?: boolean | undefined
  /** Bind an IPv6 socket to IPv6 only. Default: false. */
  readonly ipv6Only?: boolean | undefined
  /** Connect to one peer: `send` needs no address and only its datagrams are received. */
  readonly connect?: { readonly host: string; readonly port: number } | undefined
  /** Datagrams buffered while nobody receives. Default: 1024. */
  readonly receiveBufferSize?: number | undefined
  /** What a full buffer does with a new datagram: drop it, or drop the oldest. Default: `"dropping"`. */
  readonly overflow?: "dropping" | "sliding" | undefined
  /** The kernel's SO_RCVBUF / SO_SNDBUF in bytes. Default: the OS's. */
  readonly socketReceiveBufferSize?: number | undefined
  readonly socketSendBufferSize?: number | undefined
  /** SO_BROADCAST. Default: false. */
  readonly broadcast?: boolean | undefined
  readonly multicast?: MulticastOptions | undefined
}

/**
 * A bound UDP socket.
 *
 * @since 0.1.0
 * @category models
 */
export interface DatagramSocket {
  readonly [TypeId]: TypeId
  /**
   * Sends one datagram; completes when the OS took it. The address is required unless the socket is
   * connected, and must be absent when it is.
   */
  readonly send: (data: Uint8Array, address?: UdpAddress | undefined) => Effect.Effect<void, TransportError>
  /**
   * The next datagram, waiting for one. Receive errors (such as `ECONNREFUSED` after sending to a closed port
   * on a connected socket) fail one `receive` each, in order, and do not close the socket.
   */
  readonly receive: Effect.Effect<Message, TransportError>
  /** Up to `max` datagrams that are already buffered, waiting for at least one. */
  readonly receiveMany: (max: number) => Effect.Effect<readonly [Message, ...Array<Message>], TransportError>
  /** Every datagram received, ending when the socket closes; fails at the first receive error. */
  readonly messages: Stream.Stream<Message, TransportError>
  /** Datagrams dropped because the buffer was full. */
  readonly dropped: Effect.Effect<number>
  /** Datagrams waiting in the buffer. */
  readonly buffered: Effect.Effect<number>
  /** Connects to one peer (or another one). */
  readonly connect: (address: { readonly host: string; readonly port: number }) => Effect.Effect<void, TransportError>
  readonly disconnect: Effect.Effect<void, TransportError>
  readonly addMembership: (group: string, iface?: string | undefined) => Effect.Effect<void, TransportError>
  readonly dropMembership: (group: string, iface?: string | undefined) => Effect.Effect<void, TransportError>
  readonly info: Effect.Effect<DatagramInfo, TransportError>
}

/**
 * @since 0.1.0
 * @category guards
 */
export const isDatagramSocket = (u: unknown): u is DatagramSocket => Predicate.hasProperty(u, TypeId)

/**
 * The datagram socket of the current program.
 *
 * @since 0.1.0
 * @category tags
 */
export class CurrentDatagramSocket extends Context.Tag("effect-wire/transport/CurrentDatagramSocket")<
  CurrentDatagramSocket,
  DatagramSocket
>() {}

const defaultReceiveBufferSize = 1024

/** Runs a synchronous socket call that throws on failure. */
const attempt = (reason: TransportError["reason"], address: string | undefined, f: () => void) =>
  Effect.try({ try: f, catch: (cause) => fromNodeError(reason, cause, address) })

/**
 * Binds a UDP socket; closing the scope closes it.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options?: DatagramOptions): Effect.Effect<DatagramSocket, TransportError, Scope.Scope> =>
  Effect.gen(function*() {
    const type = options?.type ?? "udp4"
    const host = options?.host ?? (type === "udp4" ? "0.0.0.0" : "::")
    const port = options?.port ?? 0
    const bindAddress = format(udp(host, port))
    const buffer = new ReceiveBuffer<Message>(
      Math.max(1, options?.receiveBufferSize ?? defaultReceiveBufferSize),
      options?.overflow ?? "dropping"
    )
    const socket = yield* Effect.acquireRelease(
      Effect.try({
        try: () =>
          Dgram.createSocket({
            type,
            reuseAddr: options?.reuseAddr ?? false,
            ipv6Only: options?.ipv6Only ?? false,
            ...(options?.socketReceiveBufferSize !== undefined ? { recvBufferSize: options.socketReceiveBufferSize } : {}),
            ...(options?.socketSendBufferSize !== undefined ? { sendBufferSize: options.socketSendBufferSize } : {})
          }),
        catch: (cause) => fromNodeError("Listen", cause, bindAddress)
      }),
      (socket) =>
        Effect.async<void>((resume) => {
          buffer.close(new TransportError({ reason: "Closed", address: bindAddress, detail: "socket is closed" }))
          socket.removeAllListeners("message")
          try {
            socket.close(() => resume(Effect.void))
          } catch {
            // Never bound or already closed: nothing to release.
            resume(Effect.void)
          }
        })
    )

    yield* Effect.async<void, TransportError>((resume) => {
      const onError = (cause: Error) => {
        socket.off("listening", onListening)
        resume(Effect.fail(fromNodeError("Listen", cause, bindAddress)))
      }
      const onListening = () => {
        socket.off("error", onError)
        resume(Effect.void)
      }
      socket.once("error", onError)
      socket.once("listening", onListening)
      socket.bind({ port, address: host })
      return Effect.sync(() => {
        socket.off("error", onError)
        socket.off("listening", onListening)
      })
    })

    socket.on("message", (data, rinfo) =>
      buffer.offer({
        data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
        address: udp(rinfo.address, rinfo.port)
      })
    )
    // While a connect is under way its errors (DNS lookup, …) belong to it, not to the receivers.
    let connectError: ((cause: Error) => void) | undefined = undefined
    socket.on("error", (cause) =>
      connectError !== undefined ? connectError(cause) : buffer.offerError(fromNodeError("Read", cause, bindAddress))
    )

    if (options?.broadcast) yield* attempt("Listen", bindAddress, () => socket.setBroadcast(true))
    const multicast = options?.multicast
    if (multicast !== undefined) {
      if (multicast.ttl !== undefined) {
        const ttl = multicast.ttl
        yield* attempt("Listen", bindAddress, () => socket.setMulticastTTL(ttl))
      }
      if (multicast.loopback !== undefined) {
        const loopback = multicast.loopback
        yield* attempt("Listen", bindAddress, () => socket.setMulticastLoopback(loopback))
      }
      if (multicast.interface !== undefined) {
        const iface = multicast.interface
        yield* attempt("Listen", bindAddress, () => socket.setMulticastInterface(iface))
      }
      for (const entry of multicast.groups ?? []) {
        const group = typeof entry === "string" ? entry : entry.group
        const iface = typeof entry === "string" ? undefined : entry.interface
        yield* attempt("Listen", group, () => socket.addMembership(group, iface))
      }
    }

    const closedError = () => new TransportError({ reason: "Closed", address: bindAddress, detail: "socket is closed" })
    const whenOpen = <A>(effect: Effect.Effect<A, TransportError>): Effect.Effect<A, TransportError> =>
      Effect.suspend(() => buffer.isClosed ? Effect.fail(closedError()) : effect)

    const connect = (address: { readonly host: string; readonly port: number }) =>
      whenOpen(
        Effect.async<void, TransportError>((resume) => {
          const target = format(udp(address.host, address.port))
          const onError = (cause: Error) => {
            connectError = undefined
            resume(Effect.fail(fromNodeError("Connect", cause, target)))
          }
          try {
            // A connected socket must be disconnected before it can connect elsewhere.
            if (remoteOf(socket) !== undefined) socket.disconnect()
            connectError = onError
            socket.connect(address.port, address.host, () => {
              if (connectError === onError) connectError = undefined
              resume(Effect.void)
            })
          } catch (cause) {
            connectError = undefined
            resume(Effect.fail(fromNodeError("Connect", cause, target)))
          }
          return Effect.sync(() => {
            if (connectError === onError) connectError = undefined
          })
        })
      )

    if (options?.connect !== undefined) yield* connect(options.connect)

    const send = (data: Uint8Array, address?: UdpAddress | undefined) =>
      whenOpen(
        Effect.async<void, TransportError>((resume) => {
          const target = address === undefined ? undefined : format(address)
          const callback = (error: Error | null) =>
            resume(error === null ? Effect.void : Effect.fail(fromNodeError("Write", error, target)))
          try {
            if (address === undefined) socket.send(data, callback)
            else socket.send(data, address.port, address.host, callback)
          } catch (cause) {
            resume(Effect.fail(fromNodeError("Write", cause, target)))
          }
        })
      )

    const receiveMany = (max: number) => buffer.take(Math.max(1, max))
    const batch = Math.min(buffer.capacity, 256)

    const service: DatagramSocket = {
      [TypeId]: TypeId,
      send,
      receive: Effect.map(buffer.take(1), (messages) => messages[0]),
      receiveMany,
      messages: Stream.repeatEffectChunkOption(
        buffer.take(batch).pipe(
          Effect.mapBoth({
            onFailure: (error) => error.reason === "Closed" ? Option.none() : Option.some(error),
            onSuccess: (messages) => Chunk.unsafeFromArray(messages)
          })
        )
      ),
      dropped: Effect.sync(() => buffer.dropped),
      buffered: Effect.sync(() => buffer.length),
      connect,
      disconnect: whenOpen(attempt("Connect", bindAddress, () => socket.disconnect())),
      addMembership: (group, iface) => whenOpen(attempt("Listen", group, () => socket.addMembership(group, iface))),
      dropMembership: (group, iface) => whenOpen(attempt("Listen", group, () => socket.dropMembership(group, iface))),
      info: whenOpen(
        Effect.try({
          try: (): DatagramInfo => {
            const local = socket.address()
            return { local: udp(local.address, local.port), remote: remoteOf(socket) }
          },
          catch: (cause) => fromNodeError("Listen", cause, bindAddress)
        })
      )
    }
    return service
  })

const remoteOf = (socket: Dgram.Socket): UdpAddress | undefined => {
  try {
    const remote = socket.remoteAddress()
    return udp(remote.address, remote.port)
  } catch {
    return undefined
  }
}

/**
 * @since 0.1.0
 * @category layers
 */
export const layer = (options?: DatagramOptions): Layer.Layer<CurrentDatagramSocket, TransportError> =>
  Layer.scoped(CurrentDatagramSocket, make(options))

/**
 * A layer whose options come from `Config`, e.g. `{ host: Config.string("UDP_HOST"), port: Config.port("UDP_PORT") }`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  config: Config.Config.Wrap<DatagramOptions>
): Layer.Layer<CurrentDatagramSocket, TransportError | ConfigError.ConfigError> =>
  Layer.scoped(CurrentDatagramSocket, Effect.flatMap(Config.unwrap(config), make))
