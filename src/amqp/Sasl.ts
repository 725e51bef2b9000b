/**
 * SASL for `connection.start-ok`: choosing a mechanism from the broker's list and encoding its response.
 *
 * | Mechanism | response |
 * |---|---|
 * | `PLAIN` | `0x00 user 0x00 password` (UTF-8, empty authorization id) |
 * | `AMQPLAIN` | a field table without its length prefix: `LOGIN` → `S user`, `PASSWORD` → `S password` |
 * | `EXTERNAL` | empty: the identity is the TLS client certificate |
 * | `ANONYMOUS` | empty: RabbitMQ 4.0+ logs in as its configured anonymous user |
 *
 * @since 0.1.0
 */
import * as Either from "effect/Either"
import * as Redacted from "effect/Redacted"
import { ConnectionFailed } from "./ClientError.js"
import type { MechanismName } from "./Uri.js"

/**
 * @since 0.1.0
 * @category models
 */
export type Mechanism = MechanismName

/**
 * @since 0.1.0
 * @category models
 */
export interface Credentials {
  readonly username: string
  readonly password: Redacted.Redacted<string>
}

const utf8 = new TextEncoder()

/**
 * `0x00 user 0x00 password`.
 *
 * @since 0.1.0
 * @category encoding
 */
export const plain = (credentials: Credentials): Uint8Array => {
  const user = utf8.encode(credentials.username)
  const pass = utf8.encode(Redacted.value(credentials.password))
  const out = new Uint8Array(2 + user.length + pass.length)
  out.set(user, 1)
  out.set(pass, 2 + user.length)
  return out
}

const tableEntry = (name: string, value: Uint8Array): Uint8Array => {
  const key = utf8.encode(name)
  const out = new Uint8Array(1 + key.length + 1 + 4 + value.length)
  const view = new DataView(out.buffer)
  out[0] = key.length
  out.set(key, 1)
  out[1 + key.length] = 0x53 // 'S'
  view.setUint32(2 + key.length, value.length)
  out.set(value, 6 + key.length)
  return out
}

/**
 * The AMQPLAIN response: the entries of a field table, without the table's length prefix.
 *
 * @since 0.1.0
 * @category encoding
 */
export const amqplain = (credentials: Credentials): Uint8Array => {
  const login = tableEntry("LOGIN", utf8.encode(credentials.username))
  const password = tableEntry("PASSWORD", utf8.encode(Redacted.value(credentials.password)))
  const out = new Uint8Array(login.length + password.length)
  out.set(login)
  out.set(password, login.length)
  return out
}

/**
 * The response bytes for a mechanism.
 *
 * @since 0.1.0
 * @category encoding
 */
export const response = (mechanism: Mechanism, credentials: Credentials): Uint8Array => {
  switch (mechanism) {
    case "PLAIN":
      return plain(credentials)
    case "AMQPLAIN":
      return amqplain(credentials)
    case "EXTERNAL":
    case "ANONYMOUS":
      return new Uint8Array(0)
  }
}

/**
 * Picks the first of the wanted mechanisms that the broker offers (`mechanisms` is the space-separated list of
 * `connection.start`), or fails with `MechanismNotSupported` naming both lists.
 *
 * @since 0.1.0
 * @category negotiation
 */
export const choose = (
  wanted: ReadonlyArray<Mechanism>,
  offered: string
): Either.Either<Mechanism, ConnectionFailed> => {
  const server = offered.split(" ").filter((m) => m.length > 0)
  const found = wanted.find((m) => server.includes(m))
  return found === undefined
    ? Either.left(
      new ConnectionFailed({
        reason: "MechanismNotSupported",
        detail: `wanted ${wanted.join(", ")}; the broker offers ${server.join(", ") || "nothing"}`
      })
    )
    : Either.right(found)
}
