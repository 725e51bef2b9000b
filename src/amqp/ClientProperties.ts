/**
 * The `client-properties` table of `connection.start-ok`: who we are, and the RabbitMQ capabilities we
 * understand. Without the capabilities the broker never sends `connection.blocked` or `basic.cancel`, and reports
 * a refused login as a bare socket close.
 *
 * @since 0.1.0
 */

/**
 * The capabilities this client advertises, all `true`.
 *
 * @since 0.1.0
 * @category constants
 */
export const capabilities = {
  publisher_confirms: true,
  exchange_exchange_bindings: true,
  "basic.nack": true,
  consumer_cancel_notify: true,
  "connection.blocked": true,
  authentication_failure_close: true,
  per_consumer_qos: true
} as const

/**
 * The client's name and version as sent in `product` and `version`.
 *
 * @since 0.1.0
 * @category constants
 */
export const product = "effect-wire"

/**
 * @since 0.1.0
 * @category constants
 */
export const version = "0.1.0"

/**
 * Client properties as plain values: strings become long strings (`S`), booleans `t`, nested records tables
 * (`F`).
 *
 * @since 0.1.0
 * @category models
 */
export interface ClientProperties {
  readonly product: string
  readonly version: string
  readonly platform: string
  readonly information: string
  readonly capabilities: Readonly<Record<string, boolean>>
  readonly connection_name?: string
  readonly [key: string]: string | boolean | Readonly<Record<string, boolean>> | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** Shown in the RabbitMQ management UI and in `rabbitmqctl list_connections client_properties`. */
  readonly connectionName?: string | undefined
  /** Extra string entries; they cannot replace `capabilities`. */
  readonly extra?: Readonly<Record<string, string>> | undefined
}

const platform = (): string => {
  const proc = (globalThis as { readonly process?: { readonly version?: string } }).process
  return proc?.version !== undefined ? `Node.js ${proc.version}` : "JavaScript"
}

/**
 * Builds the client properties.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options?: Options): ClientProperties => ({
  ...options?.extra,
  product,
  version,
  platform: platform(),
  information: "https://github.com/effect-wire/effect-wire",
  capabilities,
  ...(options?.connectionName !== undefined ? { connection_name: options.connectionName } : {})
})
