import * as Redacted from "effect/Redacted"
import * as Net from "node:net"
import * as Tls from "node:tls"

/** PEM text or DER/PEM bytes. */
export type Pem = string | Uint8Array

const toNode = (pem: Pem): string | Buffer =>
  typeof pem === "string" ? pem : Buffer.from(pem.buffer, pem.byteOffset, pem.byteLength)

export const pems = (value: Pem | ReadonlyArray<Pem> | undefined): Array<string | Buffer> | undefined =>
  value === undefined ? undefined : (Array.isArray(value) ? value : [value as Pem]).map(toNode)

export interface Credentials {
  readonly ca?: Pem | ReadonlyArray<Pem> | undefined
  readonly cert?: Pem | ReadonlyArray<Pem> | undefined
  readonly key?: Redacted.Redacted<Pem> | undefined
  readonly passphrase?: Redacted.Redacted<string> | undefined
}

/** The secure-context fields of Node's TLS options. Secrets are unwrapped only here, at the last moment. */
export const secureContextOptions = (credentials: Credentials): Tls.SecureContextOptions => {
  const out: Tls.SecureContextOptions = {}
  const ca = pems(credentials.ca)
  const cert = pems(credentials.cert)
  if (ca !== undefined) out.ca = ca
  if (cert !== undefined) out.cert = cert
  if (credentials.key !== undefined) out.key = toNode(Redacted.value(credentials.key))
  if (credentials.passphrase !== undefined) out.passphrase = Redacted.value(credentials.passphrase)
  return out
}

/**
 * The TCP socket under a TLS socket accepted by a `tls.Server`. Node keeps it as `_parent`; it is the one that
 * can send a reset.
 */
export const parentSocket = (socket: Tls.TLSSocket): Net.Socket | undefined => {
  const parent = (socket as { readonly _parent?: unknown })._parent
  return parent instanceof Net.Socket && !(parent instanceof Tls.TLSSocket) ? parent : undefined
}
