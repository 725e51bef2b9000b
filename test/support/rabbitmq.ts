/**
 * The RabbitMQ broker of the AMQP interop suites, and the controls tests use on it.
 *
 * Started and configured by `test/interop/setup.sh rabbitmq` (`test/interop/rabbitmq.sh start|stop|status`):
 *
 * - Debian 12's `rabbitmq-server` **3.10.8** on Erlang/OTP 25 (Debian has no 3.13 or 4.x), one node per machine,
 *   `rabbit@localhost`, running as the `rabbitmq` OS user with Debian's layout (config in `/etc/rabbitmq`,
 *   data and pid file in `/var/lib/rabbitmq/mnesia`, logs in `/var/log/rabbitmq`). No systemd: started with
 *   `rabbitmq-server -detached`.
 * - Everything on loopback: AMQP `127.0.0.1:5672`, epmd `127.0.0.1:4369`, Erlang distribution `127.0.0.1:25672`.
 *   No TLS listener, no management plugin.
 * - Users: `guest`/`guest` (administrator, loopback only — the default) and `effect-wire`/`effect-wire`
 *   (administrator), both with full rights on `/`. Vhost `effect-wire-denied` exists and nobody has rights there.
 * - `rabbitmqctl` must run as the `rabbitmq` user (it owns the Erlang cookie); Debian's `/usr/sbin/rabbitmqctl`
 *   does the `su` when run as root, and reads the node name from `/etc/rabbitmq/rabbitmq-env.conf`, so no
 *   environment is needed. Each call costs about a second (a fresh Erlang VM). As another user, point
 *   `EFFECT_WIRE_RABBITMQCTL` at a wrapper (e.g. one running `sudo rabbitmqctl "$@"`).
 *
 * What this 3.10.8 broker does, observed with amqplib and @cloudamqp/amqp-client (the AMQP spec's notes on
 * 3.13/4.x differ where marked):
 *
 * - `connection.tune`: channel_max 2047, frame_max 131072, heartbeat 60. A client's tune-ok frame_max is
 *   accepted from **4096** up (4095 is refused with a TCP close); 8192 and 131072 are accepted as asked,
 *   0 and anything above 131072 negotiate to 131072. (4.1+ raised the minimum and the pre-tune limit to 8192;
 *   here the pre-tune frame limit is 4096, so a start-ok must fit 4096 bytes.)
 * - Bad credentials: `connection.close 403 ACCESS_REFUSED` ("Login was refused using authentication mechanism
 *   PLAIN"). A vhost without permission: `connection.close` **530 NOT_ALLOWED** ("access to vhost
 *   'effect-wire-denied' refused for user 'guest'") in reply to `connection.open` — not 403.
 * - `connection.start`: mechanisms `PLAIN AMQPLAIN` (no `ANONYMOUS`, which is 4.0+); server properties
 *   product "RabbitMQ", version "3.10.8", platform "Erlang/OTP 25.2.3", cluster_name "rabbit@<hostname>";
 *   capabilities publisher_confirms, exchange_exchange_bindings, basic.nack, consumer_cancel_notify,
 *   connection.blocked, consumer_priorities, authentication_failure_close, per_consumer_qos, direct_reply_to.
 * - handshake_timeout 10 s; max_message_size 128 MiB (134217728); consumer_timeout 30 min; memory high
 *   watermark 0.4 (setup restores it); quorum and stream queues available (feature flags enabled); no AMQP 1.0
 *   listener and none of the 4.x-only features.
 */
import { execFile, execFileSync } from "node:child_process"
import * as Fs from "node:fs"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import { missingCommand } from "./peers.js"

export const host = "127.0.0.1"
export const port = 5672
export const node = "rabbit@localhost"
/** The version Debian 12 ships; `brokerVersion` asks the running broker. */
export const expectedVersion = "3.10.8"

export const guest = { username: "guest", password: "guest" } as const
/** A non-guest user with full rights on "/". */
export const user = { username: "effect-wire", password: "effect-wire" } as const
/** A vhost that exists but that no user may open (connection.open → 530 NOT_ALLOWED). */
export const deniedVhost = "effect-wire-denied"

/** `amqp://guest:guest@127.0.0.1:5672/` plus an optional vhost (URL-encoded) and query. */
export const url = (
  options: { readonly vhost?: string; readonly username?: string; readonly password?: string; readonly query?: string } =
    {}
): string =>
  `amqp://${encodeURIComponent(options.username ?? guest.username)}:${encodeURIComponent(options.password ?? guest.password)}` +
  `@${host}:${port}/${options.vhost === undefined ? "" : encodeURIComponent(options.vhost)}` +
  (options.query === undefined ? "" : `?${options.query}`)

/** The broker's pid file (Debian layout); its content is the beam.smp process id. */
export const pidFile = `/var/lib/rabbitmq/mnesia/${node}.pid`

const rabbitmqctlCommand = process.env.EFFECT_WIRE_RABBITMQCTL ?? "rabbitmqctl"

export class RabbitmqError extends Data.TaggedError("RabbitmqError")<{
  readonly reason: "CommandFailed" | "NoPid"
  readonly message: string
}> {}

// A bare AMQP handshake start: the broker answers a protocol header with connection.start (a method frame, 0x01).
const probeScript = `
const s = require("node:net").connect(${port}, "${host}", () => s.write(Buffer.from("AMQP\\x00\\x00\\x09\\x01", "latin1")))
s.setTimeout(5000, () => process.exit(3))
s.once("data", (b) => process.exit(b[0] === 1 ? 0 : 4))
s.once("error", () => process.exit(2))`

/** For `requirePeer`: why no broker answers AMQP on 127.0.0.1:5672, or `undefined`. */
export const brokerAvailable = (): string | undefined =>
  missingCommand(process.execPath, ["-e", probeScript], `no AMQP broker on ${host}:${port}; run test/interop/setup.sh rabbitmq`)

/** For `requirePeer` in suites that restart, pause or reconfigure the broker: why `rabbitmqctl` cannot reach it. */
export const brokerControlAvailable = (): string | undefined =>
  brokerAvailable() ??
    missingCommand(rabbitmqctlCommand, ["-q", "ping"], "rabbitmqctl cannot reach rabbit@localhost (run as root?)")

/** Runs `rabbitmqctl -q args...` and returns its stdout. */
export const rabbitmqctl = (args: ReadonlyArray<string>): Effect.Effect<string, RabbitmqError> =>
  Effect.async<string, RabbitmqError>((resume, signal) => {
    execFile(rabbitmqctlCommand, ["-q", ...args], { timeout: 60_000, signal }, (error, stdout, stderr) => {
      resume(
        error
          ? Effect.fail(
            new RabbitmqError({
              reason: "CommandFailed",
              message: `rabbitmqctl ${args.join(" ")}: ${error.message.split("\n")[0]}\n${stderr}${stdout}`.trim()
            })
          )
          : Effect.succeed(stdout)
      )
    })
  })

/** The running broker's version, e.g. "3.10.8". */
export const brokerVersion: Effect.Effect<string, RabbitmqError> = rabbitmqctl(["eval", "rabbit_misc:version()."])
  .pipe(Effect.map((out) => out.trim().replace(/^"|"$/g, "")))

/** Tab-separated rows of a `list_*` command, without headers. */
export const listRows = (
  args: ReadonlyArray<string>
): Effect.Effect<ReadonlyArray<ReadonlyArray<string>>, RabbitmqError> =>
  rabbitmqctl([...args, "--no-table-headers"]).pipe(
    Effect.map((out) => out.split("\n").filter((line) => line.length > 0).map((line) => line.split("\t")))
  )

/** Name, ready messages and consumers of every queue in `vhost`. */
export const listQueues = (
  vhost = "/"
): Effect.Effect<ReadonlyArray<{ readonly name: string; readonly messages: number; readonly consumers: number }>, RabbitmqError> =>
  listRows(["list_queues", "-p", vhost, "name", "messages_ready", "consumers"]).pipe(
    Effect.map((rows) => rows.map(([name, messages, consumers]) => ({ name: name!, messages: Number(messages), consumers: Number(consumers) })))
  )

/** Client-provided names (or peer ports when unnamed) of the open connections. */
export const listConnections: Effect.Effect<
  ReadonlyArray<{ readonly name: string; readonly user: string; readonly vhost: string; readonly peerPort: number }>,
  RabbitmqError
> = listRows(["list_connections", "client_properties", "user", "vhost", "peer_port"]).pipe(
  Effect.map((rows) =>
    rows.map(([props, user, vhost, peerPort]) => ({
      name: /connection_name","([^"]*)"/.exec(props ?? "")?.[1] ?? "",
      user: user!,
      vhost: vhost!,
      peerPort: Number(peerPort)
    }))
  )
)

/**
 * Closes every client connection on the node: each gets `connection.close 320 CONNECTION_FORCED` with
 * `reason` as its text.
 */
export const closeAllConnections = (reason = "closed by test"): Effect.Effect<void, RabbitmqError> =>
  Effect.asVoid(rabbitmqctl(["close_all_connections", "--global", reason]))

/**
 * Closes the connections whose client-provided `connection_name` is `name` (320 CONNECTION_FORCED with
 * `reason`), leaving other suites' connections alone. Returns how many were closed.
 */
export const closeConnection = (name: string, reason = "closed by test"): Effect.Effect<number, RabbitmqError> =>
  listRows(["list_connections", "pid", "client_properties"]).pipe(
    Effect.map((rows) => rows.filter(([, props]) => (props ?? "").includes(`"connection_name","${name}"`)).map(([pid]) => pid!)),
    Effect.tap((pids) => Effect.forEach(pids, (pid) => rabbitmqctl(["close_connection", pid, reason]), { discard: true })),
    Effect.map((pids) => pids.length)
  )

/**
 * Sets the memory high watermark (fraction of RAM). A tiny value (e.g. 0.0000001) raises the memory alarm at
 * once, so publishers get `connection.blocked`; 0.4 is the default.
 */
export const setMemoryWatermark = (fraction: number): Effect.Effect<void, RabbitmqError> =>
  Effect.asVoid(rabbitmqctl(["set_vm_memory_high_watermark", fraction.toString()]))

/** Raises the memory alarm for the scope's lifetime, then restores the default watermark. */
export const memoryAlarm: Effect.Effect<void, RabbitmqError, Scope.Scope> = Effect.acquireRelease(
  setMemoryWatermark(0.0000001),
  () => Effect.orDie(setMemoryWatermark(0.4))
)

/** Stops the RabbitMQ application (the Erlang node stays up): every connection drops, the port closes. */
export const stopApp: Effect.Effect<void, RabbitmqError> = Effect.asVoid(rabbitmqctl(["stop_app"]))

/** Starts the application again and waits until it accepts connections. */
export const startApp: Effect.Effect<void, RabbitmqError> = Effect.asVoid(
  Effect.zipRight(rabbitmqctl(["start_app"]), rabbitmqctl(["await_startup", "--timeout", "60"]))
)

/** Restarts the broker application: a broker restart as clients see it. */
export const restartApp: Effect.Effect<void, RabbitmqError> = Effect.zipRight(stopApp, startApp)

/** The broker's OS process id (beam.smp). */
export const brokerPid: Effect.Effect<number, RabbitmqError> = Effect.suspend(() => {
  try {
    const pid = Number(Fs.readFileSync(pidFile, "utf8").trim())
    if (Number.isInteger(pid) && pid > 0) return Effect.succeed(pid)
  } catch {
    // Fall through to asking the node.
  }
  return rabbitmqctl(["eval", "os:getpid()."]).pipe(
    Effect.map((out) => Number(out.trim().replace(/"/g, ""))),
    Effect.filterOrFail(
      (pid) => Number.isInteger(pid) && pid > 0,
      () => new RabbitmqError({ reason: "NoPid", message: `no broker pid in ${pidFile} or from the node` })
    )
  )
})

const signalBroker = (signal: NodeJS.Signals) =>
  Effect.flatMap(brokerPid, (pid) =>
    Effect.try({
      try: () => process.kill(pid, signal),
      catch: (error) => new RabbitmqError({ reason: "CommandFailed", message: `kill -${signal} ${pid}: ${String(error)}` })
    }))

/**
 * Freezes the broker (SIGSTOP to beam.smp): sockets stay open but nothing is read or written, so heartbeats
 * stop — a half-open peer. Always pair with `resumeBroker`, or use `pausedBroker`.
 */
export const pauseBroker: Effect.Effect<void, RabbitmqError> = Effect.asVoid(signalBroker("SIGSTOP"))

/** Lets a paused broker run again (SIGCONT). */
export const resumeBroker: Effect.Effect<void, RabbitmqError> = Effect.asVoid(signalBroker("SIGCONT"))

/** Pauses the broker for the scope's lifetime. */
export const pausedBroker: Effect.Effect<void, RabbitmqError, Scope.Scope> = Effect.acquireRelease(
  pauseBroker,
  () => Effect.orDie(resumeBroker)
)

/** A synchronous `rabbitmqctl` for `beforeAll`/`afterAll` hooks outside Effect. */
export const rabbitmqctlSync = (args: ReadonlyArray<string>): string =>
  execFileSync(rabbitmqctlCommand, ["-q", ...args], { encoding: "utf8", timeout: 60_000 })
