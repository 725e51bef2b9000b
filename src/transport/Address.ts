/**
 * @since 0.1.0
 */

/**
 * @since 0.1.0
 * @category models
 */
export interface TcpAddress {
  readonly _tag: "TcpAddress"
  readonly host: string
  readonly port: number
}

/**
 * @since 0.1.0
 * @category models
 */
export interface UnixAddress {
  readonly _tag: "UnixAddress"
  readonly path: string
}

/**
 * An address on an in-memory network (see `effect-wire/testing`).
 *
 * @since 0.1.0
 * @category models
 */
export interface MemoryAddress {
  readonly _tag: "MemoryAddress"
  readonly name: string
}

/**
 * @since 0.1.0
 * @category models
 */
export type Address = TcpAddress | UnixAddress | MemoryAddress

/**
 * @since 0.1.0
 * @category constructors
 */
export const tcp = (host: string, port: number): TcpAddress => ({ _tag: "TcpAddress", host, port })

/**
 * @since 0.1.0
 * @category constructors
 */
export const unix = (path: string): UnixAddress => ({ _tag: "UnixAddress", path })

/**
 * @since 0.1.0
 * @category constructors
 */
export const memory = (name: string): MemoryAddress => ({ _tag: "MemoryAddress", name })

/**
 * `host:port` (IPv6 hosts in brackets), the socket path, or `memory:name`.
 *
 * @since 0.1.0
 * @category formatting
 */
export const format = (address: Address): string => {
  switch (address._tag) {
    case "TcpAddress":
      return address.host.includes(":") ? `[${address.host}]:${address.port}` : `${address.host}:${address.port}`
    case "UnixAddress":
      return address.path
    case "MemoryAddress":
      return `memory:${address.name}`
  }
}
