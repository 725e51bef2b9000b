import { assert, describe, it } from "@effect/vitest"
import * as Either from "effect/Either"
import * as FastCheck from "effect/FastCheck"
import * as Schema from "effect/Schema"
import * as Command from "../../src/emqp/Command.js"
import * as Headers from "../../src/emqp/Headers.js"

const enc = new TextEncoder()
const frames = (...texts: ReadonlyArray<string>) => texts.map((t) => enc.encode(t))
const texts = (fs: ReadonlyArray<Uint8Array>) => fs.map((f) => new TextDecoder().decode(f))
const decodeOk = (fs: ReadonlyArray<Uint8Array>) => {
  const result = Command.decode(fs)
  if (Either.isLeft(result)) assert.fail(result.left.message)
  return result.right
}
const decodeErr = (fs: ReadonlyArray<Uint8Array>) => {
  const result = Command.decode(fs)
  if (Either.isRight(result)) assert.fail(`decoded ${JSON.stringify(result.right)}`)
  return result.left
}

const id1 = "2ad02f91-adeb-46c8-8480-b1ceb4022576"
const id2 = "572ddb63-0b3c-4f0e-9c69-1f0bb1d0e8a7"
const payload = "[\"run\", {\"callable\": \"add\", \"path\": \"jobs\", \"args\": [1, 2], \"kwargs\": {}, " +
  "\"class_args\": [], \"class_kwargs\": {}}]"

describe("Command: what 0.3.13 puts on the wire", () => {
  it("READY: the 4 frames of the spec's byte example", () => {
    const out = Command.encode(Command.Ready.make({ msgid: id1 }))
    assert.deepStrictEqual(texts(out), ["", "eMQP/1.0", "READY", id1])
    // 2 + 10 + 7 + 38 bytes of ZMTP framing around these frames = 57 bytes.
    assert.strictEqual(out.reduce((n, f) => n + 2 + f.length, 0), 57)
    assert.deepStrictEqual(decodeOk(out), { _tag: "Ready", msgid: id1 })
  })

  it("worker INFORM carries its queues as Python-formatted JSON, in priority order", () => {
    const wire = ["", "eMQP/1.0", "INFORM", id1, "[[10, \"default\"], [15, \"push_notifications\"]]", "worker"]
    const inform = Command.Inform.make({
      msgid: id1,
      queues: [{ weight: 10, name: "default" }, { weight: 15, name: "push_notifications" }],
      peerType: "worker"
    })
    assert.deepStrictEqual(texts(Command.encode(inform)), wire)
    assert.deepStrictEqual(decodeOk(frames(...wire)), inform)
  })

  it("scheduler INFORM has an empty queue frame; compact JSON is accepted", () => {
    const wire = ["", "eMQP/1.0", "INFORM", id1, "", "scheduler"]
    const inform = decodeOk(frames(...wire))
    assert.deepStrictEqual(inform, { _tag: "Inform", msgid: id1, queues: [], peerType: "scheduler" })
    assert.deepStrictEqual(texts(Command.encode(inform)), wire)
    const compact = decodeOk(frames("", "eMQP/1.0", "INFORM", id1, "[[40,\"email\"]]", "worker"))
    assert.deepStrictEqual(compact, { _tag: "Inform", msgid: id1, queues: [{ weight: 40, name: "email" }], peerType: "worker" })
  })

  it("ACK of an INFORM with a non-uuid msgid", () => {
    const wire = ["", "eMQP/1.0", "ACK", id2, "m-inform"]
    assert.deepStrictEqual(decodeOk(frames(...wire)), { _tag: "Ack", msgid: id2, acked: "m-inform" })
    assert.deepStrictEqual(texts(Command.encode(Command.Ack.make({ msgid: id2, acked: "m-inform" }))), wire)
  })

  it("REQUEST with CSV headers, and the 5-frame dispatch-ack REPLY", () => {
    const wire = ["", "eMQP/1.0", "REQUEST", id1, "default", "reply-requested,timeout:30", payload]
    const request = decodeOk(frames(...wire))
    assert.deepStrictEqual(request, {
      _tag: "Request",
      msgid: id1,
      queue: "default",
      headers: Headers.make({ replyRequested: true, timeout: 30 }),
      payload
    })
    assert.deepStrictEqual(texts(Command.encode(request)), wire)
    const ack = decodeOk(frames("", "eMQP/1.0", "REPLY", id2, id1))
    assert.deepStrictEqual(ack, { _tag: "Reply", msgid: id2, body: id1 })
  })

  it("the worker's 6-frame REPLY is a Result keyed by the request's msgid", () => {
    const wire = ["", "eMQP/1.0", "REPLY", id2, "{\"value\": 42}", id1]
    const result = decodeOk(frames(...wire))
    assert.deepStrictEqual(result, { _tag: "Result", msgid: id2, result: "{\"value\": 42}", requestId: id1 })
    assert.deepStrictEqual(texts(Command.encode(result)), wire)
  })

  it("HEARTBEAT with a Python time.time() string", () => {
    const wire = ["", "eMQP/1.0", "HEARTBEAT", id1, "1795261963.2196796"]
    assert.deepStrictEqual(decodeOk(frames(...wire)), { _tag: "Heartbeat", msgid: id1, timestamp: "1795261963.2196796" })
  })

  it("9-frame SCHEDULE (interval and cron) and UNSCHEDULE", () => {
    const interval = ["", "eMQP/1.0", "SCHEDULE", id1, "default", "guarantee", "60", payload, ""]
    const s = decodeOk(frames(...interval))
    assert.deepStrictEqual(s, {
      _tag: "Schedule",
      msgid: id1,
      queue: "default",
      headers: Headers.make({ guarantee: true }),
      interval: 60,
      payload,
      cron: ""
    })
    assert.deepStrictEqual(texts(Command.encode(s)), interval)
    const cron = ["", "eMQP/1.0", "SCHEDULE", id1, "default", "guarantee", "-1", payload, "*/5 * * * *"]
    assert.deepStrictEqual(texts(Command.encode(decodeOk(frames(...cron)))), cron)
    const un = decodeOk(frames("", "eMQP/1.0", "UNSCHEDULE", id1, "default", "", "-1", payload, ""))
    assert.strictEqual(un._tag, "Unschedule")
  })

  it("the published 7-frame SCHEDULE is accepted as a job without interval or cron", () => {
    const s = decodeOk(frames("", "eMQP/1.0", "SCHEDULE", id1, "q", "nohaste,run_count:5", payload))
    assert.deepStrictEqual(s, {
      _tag: "Schedule",
      msgid: id1,
      queue: "q",
      headers: Headers.make({ nohaste: true, runCount: 5 }),
      interval: -1,
      payload,
      cron: ""
    })
  })

  it("PUBLISH: 6 frames; the 7-frame client layout drops its headers frame", () => {
    const wire = ["", "eMQP/1.0", "PUBLISH", id1, "news", "{\"a\": 1}"]
    const p = decodeOk(frames(...wire))
    assert.deepStrictEqual(p, { _tag: "Publish", msgid: id1, topic: "news", message: "{\"a\": 1}" })
    assert.deepStrictEqual(texts(Command.encode(p)), wire)
    assert.deepStrictEqual(decodeOk(frames("", "eMQP/1.0", "PUBLISH", id1, "news", "", "{\"a\": 1}")), p)
  })

  it("DISCONNECT, KBYE (and the published KBAI), admin commands", () => {
    assert.deepStrictEqual(decodeOk(frames("", "eMQP/1.0", "DISCONNECT", id1)), { _tag: "Disconnect", msgid: id1 })
    assert.deepStrictEqual(decodeOk(frames("", "eMQP/1.0", "KBYE", id1)), { _tag: "Kbye", msgid: id1 })
    assert.deepStrictEqual(decodeOk(frames("", "eMQP/1.0", "KBAI", id1)), { _tag: "Kbye", msgid: id1 })
    assert.deepStrictEqual(texts(Command.encode(Command.Kbye.make({ msgid: id1 }))), ["", "eMQP/1.0", "KBYE", id1])
    const admin = `admin:${id1}`
    assert.deepStrictEqual(decodeOk(frames("", "eMQP/1.0", "STATUS", admin)), { _tag: "Status", msgid: admin, subCommand: "" })
    assert.deepStrictEqual(decodeOk(frames("", "eMQP/1.0", "STATUS", admin, "show_managers")), {
      _tag: "Status",
      msgid: admin,
      subCommand: "show_managers"
    })
    assert.strictEqual(decodeOk(frames("", "eMQP/1.0", "ROUTER_SHOW_WORKERS", admin))._tag, "ShowWorkers")
    assert.strictEqual(decodeOk(frames("", "eMQP/1.0", "ROUTER_SHOW_SCHEDULERS", admin))._tag, "ShowSchedulers")
    assert.strictEqual(decodeOk(frames("", "eMQP/1.0", "HELLO", admin))._tag, "Hello")
  })

  it("commands are matched case-insensitively, sent upper-case", () => {
    assert.deepStrictEqual(decodeOk(frames("", "eMQP/1.0", "ready", id1)), { _tag: "Ready", msgid: id1 })
  })

  it("decodes behind a ROUTER's routing id with an offset", () => {
    const routed = [new Uint8Array([0, 1, 2, 0xff]), ...frames("", "eMQP/1.0", "READY", id1)]
    const r = Command.decode(routed, 1)
    assert.isTrue(Either.isRight(r))
  })
})

describe("Command: typed refusals", () => {
  it("too few frames, non-empty delimiter, wrong version, unknown command", () => {
    assert.strictEqual(decodeErr(frames("", "eMQP/1.0", "READY")).reason, "Malformed")
    assert.strictEqual(decodeErr(frames("x", "eMQP/1.0", "READY", id1)).reason, "Malformed")
    const version = decodeErr(frames("", "eMQP/2.0", "READY", id1))
    assert.strictEqual(version.reason, "UnsupportedVersion")
    const unknown = decodeErr(frames("", "eMQP/1.0", "FROB", id1))
    assert.strictEqual(unknown.reason, "UnknownCommand")
    assert.strictEqual(unknown.command, "FROB")
  })

  it("wrong frame counts per command", () => {
    for (
      const wire of [
        ["", "eMQP/1.0", "READY", id1, "extra"],
        ["", "eMQP/1.0", "REQUEST", id1, "q", ""],
        ["", "eMQP/1.0", "REPLY", id1],
        ["", "eMQP/1.0", "REPLY", id1, "a", "b", "c"],
        ["", "eMQP/1.0", "SCHEDULE", id1, "q", "", "60", payload],
        ["", "eMQP/1.0", "HEARTBEAT", id1],
        ["", "eMQP/1.0", "INFORM", id1, "worker"]
      ]
    ) {
      const error = decodeErr(frames(...wire))
      assert.strictEqual(error.reason, "Malformed", wire.join("|"))
      assert.strictEqual(error.command, wire[2])
    }
  })

  it("bad fields: INFORM JSON and peer type, non-integer header values, interval, NACK code, invalid UTF-8", () => {
    assert.strictEqual(decodeErr(frames("", "eMQP/1.0", "INFORM", id1, "[[10, \"a\"", "worker")).reason, "Malformed")
    assert.strictEqual(decodeErr(frames("", "eMQP/1.0", "INFORM", id1, "[[\"10\", \"a\"]]", "worker")).reason, "Malformed")
    assert.strictEqual(decodeErr(frames("", "eMQP/1.0", "INFORM", id1, "", "client")).reason, "Malformed")
    const timeout = decodeErr(frames("", "eMQP/1.0", "REQUEST", id1, "q", "timeout:soon", payload))
    assert.strictEqual(timeout.reason, "Malformed")
    assert.strictEqual(timeout.msgid, id1)
    assert.strictEqual(decodeErr(frames("", "eMQP/1.0", "SCHEDULE", id1, "q", "", "1.5", payload, "")).reason, "Malformed")
    assert.strictEqual(decodeErr(frames("", "eMQP/1.0", "SCHEDULE", id1, "q", "", "-2", payload, "")).reason, "Malformed")
    assert.strictEqual(decodeErr(frames("", "eMQP/1.0", "NACK", id1, id2, "nope", "")).reason, "Malformed")
    const binary = [...frames("", "eMQP/1.0", "REQUEST", id1, "q", ""), new Uint8Array([0xe4, 0x00, 0xff])]
    assert.strictEqual(decodeErr(binary).reason, "Malformed")
  })
})

describe("Command: properties", () => {
  it.prop("every command survives encode → decode", [Command.Command], ([command]) => {
    assert.deepStrictEqual(decodeOk(Command.encode(command)), command)
  }, { fastCheck: { numRuns: 500 } })

  it.prop("the Schema and the fast path are the same codec", [Command.Command], ([command]) => {
    const viaSchema = Schema.encodeSync(Command.CommandFromFrames)(command)
    assert.deepStrictEqual(viaSchema, Command.encode(command))
    assert.deepStrictEqual(Schema.decodeSync(Command.CommandFromFrames)(viaSchema), command)
  }, { fastCheck: { numRuns: 200 } })

  const anyFrames = FastCheck.array(FastCheck.uint8Array({ maxLength: 40 }), { maxLength: 12 })
  it.prop("random frames decode to a command or a typed error, never a throw", [anyFrames], ([fs]) => {
    const result = Command.decode(fs)
    if (Either.isLeft(result)) {
      assert.include(["Malformed", "UnknownCommand", "UnsupportedVersion"], result.left.reason)
    }
  }, { fastCheck: { numRuns: 2000 } })

  const names = FastCheck.constantFrom(...new Set(Object.values(Command.wireName)), "KBAI")
  const field = FastCheck.oneof(
    FastCheck.string({ maxLength: 12 }),
    FastCheck.constantFrom("", "-1", "60", "[[10, \"default\"]]", "worker", "scheduler", "reply-requested,timeout:3")
  )
  const plausible = FastCheck.tuple(names, FastCheck.array(field, { maxLength: 7 }))
  it.prop("well-enveloped messages with random bodies: a command that re-encodes, or Malformed", [plausible], (
    [[name, body]]
  ) => {
    const result = Command.decode(frames("", "eMQP/1.0", name, id1, ...body))
    if (Either.isLeft(result)) {
      assert.strictEqual(result.left.reason, "Malformed")
    } else {
      assert.deepStrictEqual(decodeOk(Command.encode(result.right)), result.right)
    }
  }, { fastCheck: { numRuns: 3000 } })
})

describe("Command: the spec profile (the published tables)", () => {
  it("KBYE goes out as KBAI and decodes back to Kbye", () => {
    const out = Command.encode(Command.Kbye.make({ msgid: id1 }), "spec")
    assert.deepStrictEqual(texts(out), ["", "eMQP/1.0", "KBAI", id1])
    assert.deepStrictEqual(decodeOk(out), { _tag: "Kbye", msgid: id1 })
  })

  it("SCHEDULE and UNSCHEDULE have 7 frames, without interval and cron", () => {
    const fields = { msgid: id1, queue: "default", headers: Headers.make({ guarantee: true }), interval: 60, payload, cron: "" }
    for (const [command, name] of [[Command.Schedule.make(fields), "SCHEDULE"], [Command.Unschedule.make(fields), "UNSCHEDULE"]] as const) {
      const out = Command.encode(command, "spec")
      assert.deepStrictEqual(texts(out), ["", "eMQP/1.0", name, id1, "default", "guarantee", payload])
      assert.deepStrictEqual(decodeOk(out), { ...command, interval: -1 })
      // The reference profile keeps both.
      assert.lengthOf(Command.encode(command), 9)
    }
  })

  it("PUBLISH has 7 frames with an empty headers frame; decoding drops it", () => {
    const publish = Command.Publish.make({ msgid: id1, topic: "news", message: "{\"a\": 1}" })
    const out = Command.encode(publish, "spec")
    assert.deepStrictEqual(texts(out), ["", "eMQP/1.0", "PUBLISH", id1, "news", "", "{\"a\": 1}"])
    assert.deepStrictEqual(decodeOk(out), publish)
    assert.deepStrictEqual(texts(Command.encode(publish)), ["", "eMQP/1.0", "PUBLISH", id1, "news", "{\"a\": 1}"])
  })

  it("every other command is the same in both profiles", () => {
    const same: ReadonlyArray<Command.Command> = [
      Command.Ready.make({ msgid: id1 }),
      Command.Request.make({ msgid: id1, queue: "q", headers: Headers.make({ replyRequested: true }), payload }),
      Command.Result.make({ msgid: id1, result: "{\"value\": 1}", requestId: id2 }),
      Command.Heartbeat.make({ msgid: id1, timestamp: "1795261963.220" }),
      Command.Ack.make({ msgid: id1, acked: id2 })
    ]
    for (const command of same) assert.deepStrictEqual(texts(Command.encode(command, "spec")), texts(Command.encode(command)))
  })
})
