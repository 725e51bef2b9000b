import { assert, describe, it } from "@effect/vitest"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import * as Uri from "../../../src/amqp/Uri.js"

const ok = (input: string) => {
  const result = Uri.parseEither(input)
  if (Either.isLeft(result)) assert.fail(`${input}: ${result.left.message}`)
  return result.right
}
const reason = (input: string) => {
  const result = Uri.parseEither(input)
  if (Either.isRight(result)) assert.fail(`${input} parsed`)
  return result.left.reason
}

describe("Uri", () => {
  it("decodes credentials, IPv6 hosts, the %2f vhost and both query spellings", () => {
    const uri = ok("amqp://u%40x:p%3Ab@[::1]:5673/%2f?heartbeat=5&frameMax=8192&channel_max=10")
    assert.strictEqual(uri.tls, false)
    assert.strictEqual(uri.host, "::1")
    assert.strictEqual(uri.port, 5673)
    assert.strictEqual(uri.username, "u@x")
    assert.strictEqual(Redacted.value(uri.password), "p:b")
    assert.strictEqual(uri.vhost, "/")
    assert.deepStrictEqual(uri.heartbeat, Duration.seconds(5))
    assert.strictEqual(uri.frameMax, 8192)
    assert.strictEqual(uri.channelMax, 10)
  })

  it.each([
    ["amqp://host", "/", 5672, false],
    ["amqp://host/", "/", 5672, false],
    ["amqp://host/prod", "prod", 5672, false],
    ["amqp://host/a%2Fb", "a/b", 5672, false],
    ["amqps://host", "/", 5671, true],
    ["AMQPS://host:1234/v", "v", 1234, true]
  ] as const)("%s → vhost %s, port %d", (input, vhost, port, tls) => {
    const uri = ok(input)
    assert.strictEqual(uri.vhost, vhost)
    assert.strictEqual(uri.port, port)
    assert.strictEqual(uri.tls, tls)
  })

  it("defaults to guest/guest on localhost; a user without password has an empty one", () => {
    const uri = ok("amqp://")
    assert.strictEqual(uri.host, "localhost")
    assert.strictEqual(uri.username, "guest")
    assert.strictEqual(Redacted.value(uri.password), "guest")
    const bare = ok("amqp://alice@h")
    assert.strictEqual(bare.username, "alice")
    assert.strictEqual(Redacted.value(bare.password), "")
  })

  it("reads RabbitMQ's query names, repeatable auth_mechanism, TLS settings and heartbeat=0 as disabled", () => {
    const uri = ok(
      "amqps://h?heartbeat=0&connection_timeout=2500&auth_mechanism=external&auth_mechanism=plain" +
        "&cacertfile=%2Fetc%2Fca.pem&verify=verify_none&server_name_indication=broker.example&name=orders"
    )
    assert.strictEqual(uri.heartbeat, "disabled")
    assert.deepStrictEqual(uri.connectionTimeout, Duration.millis(2500))
    assert.deepStrictEqual(uri.authMechanisms, ["EXTERNAL", "PLAIN"])
    assert.strictEqual(uri.tlsOptions?.caFile, "/etc/ca.pem")
    assert.strictEqual(uri.tlsOptions?.verify, false)
    assert.strictEqual(uri.tlsOptions?.serverName, "broker.example")
    assert.strictEqual(uri.connectionName, "orders")
  })

  it.each([
    ["http://host", "Scheme"],
    ["amqp://host:99999", "Port"],
    ["amqp://host:x", "Port"],
    ["amqp://host/a/b", "Vhost"],
    ["amqp://u%zz@host", "Encoding"],
    ["amqp://host?heartbeat=-1", "Query"],
    ["amqp://host?frame_max=abc", "Query"],
    ["amqp://host?auth_mechanism=kerberos", "Query"],
    ["not a uri", "Syntax"]
  ] as const)("refuses %s with %s", (input, expected) => {
    assert.strictEqual(reason(input), expected)
  })

  it.effect("is a Schema from string; encoding drops the password", () =>
    Effect.gen(function*() {
      const uri = yield* Schema.decode(Uri.UriFromString)("amqp://bob:secret@rabbit:5673/prod")
      assert.strictEqual(uri.username, "bob")
      const text = yield* Schema.encode(Uri.UriFromString)(uri)
      assert.strictEqual(text, "amqp://bob@rabbit:5673/prod")
      assert.notInclude(text, "secret")
      const failure = yield* Effect.flip(Schema.decode(Uri.UriFromString)("amqp://h/a/b"))
      assert.include(failure.message, "Vhost")
    }))
})
