/**
 * `connection.tune` negotiation as pure functions (RabbitMQ's rules; 0 means "no limit" on the wire).
 */
import * as Duration from "effect/Duration"
import * as Either from "effect/Either"
import { ConnectionFailed } from "../../ClientError.js"

/** RabbitMQ 4.1+ refuses a smaller `frame_max`, and accepts no more than this before `tune-ok`. */
export const frameMinSize = 8192
export const frameMaxDefault = 131072
/** What "no limit" on `channel_max` means. */
export const channelMaxLimit = 65535

/** What the broker proposed in `connection.tune`. */
export interface Proposal {
  readonly channelMax: number
  readonly frameMax: number
  /** Seconds. */
  readonly heartbeat: number
}

/**
 * How the client wants to negotiate the heartbeat: `"server"` takes the broker's value, `"disabled"` sends 0 (the
 * broker honours the value of `tune-ok`), a duration proposes that interval (rounded up to whole seconds).
 */
export type HeartbeatOption = Duration.DurationInput | "server" | "disabled"

export interface Wanted {
  /** 0: no preference (the broker's value). */
  readonly channelMax: number
  /** 0: no limit. */
  readonly frameMax: number
  readonly heartbeat: HeartbeatOption
}

/** The values sent in `tune-ok` and used from then on. */
export interface Tuned {
  /** Usable channel ids are `1..channelMax`. */
  readonly channelMax: number
  /** 0 when neither side has a limit. */
  readonly frameMax: number
  /** Seconds; 0 disables heartbeats. */
  readonly heartbeat: number
}

const minNonZero = (a: number, b: number) => (a === 0 ? b : b === 0 ? a : Math.min(a, b))

const fail = (detail: string) => Either.left(new ConnectionFailed({ reason: "Negotiation", detail }))

export const heartbeatSeconds = (option: HeartbeatOption, server: number): number => {
  if (option === "server") return server
  if (option === "disabled") return 0
  const seconds = Math.ceil(Duration.toMillis(Duration.decode(option)) / 1000)
  // RabbitMQ: if either side is 0, the greater wins; otherwise the smaller.
  return server === 0 ? seconds : seconds === 0 ? server : Math.min(seconds, server)
}

export const negotiate = (server: Proposal, wanted: Wanted): Either.Either<Tuned, ConnectionFailed> => {
  if (wanted.frameMax !== 0 && wanted.frameMax < frameMinSize) {
    return fail(`frameMax ${wanted.frameMax} is below the minimum ${frameMinSize}`)
  }
  const frameMax = minNonZero(server.frameMax, wanted.frameMax)
  if (frameMax !== 0 && frameMax < frameMinSize) {
    return fail(`the broker's frame_max ${server.frameMax} is below the minimum ${frameMinSize}`)
  }
  const channelMax = minNonZero(server.channelMax, wanted.channelMax) || channelMaxLimit
  const heartbeat = heartbeatSeconds(wanted.heartbeat, server.heartbeat)
  if (heartbeat > 65535) return fail(`heartbeat ${heartbeat} s does not fit in 16 bits`)
  return Either.right({ channelMax: Math.min(channelMax, channelMaxLimit), frameMax, heartbeat })
}

/** Largest body chunk per frame: the whole frame (8 bytes of overhead included) stays within `frame_max`. */
export const bodyChunkSize = (frameMax: number): number => (frameMax === 0 ? frameMaxDefault : frameMax) - 8
