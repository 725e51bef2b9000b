import { assert, describe, it } from "@effect/vitest"
import * as Either from "effect/Either"
import * as Redacted from "effect/Redacted"
import nacl from "tweetnacl"
import * as Curve from "../../src/zmtp/Curve.js"
import * as Z85 from "../../src/zmtp/Z85.js"

const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString("hex")
const key = (z85: string) => Either.getOrThrow(Z85.decode(z85))
// libzmq's documented test keys (doc/zmq_curve.txt).
const clientPublic = key("Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hID")
const clientSecret = key("D:)Q[IlAW!ahhC2ac:9*A}h:p?([4%wOTJ%JR%cs")
const serverPublic = key("rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7")
const serverSecret = key("JTKVSB%%)wK0E.X)V>+}o?pNmC{O&4W4b!Ni{Lh6")

const nonce = (prefix: string, counter: number) => {
  const out = new Uint8Array(24)
  out.set(new TextEncoder().encode(prefix))
  Buffer.from(out.buffer).writeUInt32BE(counter, 20)
  return out
}

describe("Curve", () => {
  it("libzmq's documented key pairs are X25519 pairs", () => {
    const client = Either.getOrThrow(Curve.keyPairFromSecret(clientSecret))
    assert.strictEqual(hex(client.publicKey), hex(clientPublic))
    const server = Either.getOrThrow(Curve.keyPairFromSecret("JTKVSB%%)wK0E.X)V>+}o?pNmC{O&4W4b!Ni{Lh6"))
    assert.strictEqual(hex(server.publicKey), hex(serverPublic))
    assert.strictEqual(hex(Redacted.value(server.secretKey)), hex(serverSecret))
  })

  it("golden HELLO box: 64 zeros, nonce CurveZMQHELLO--- + 1, client transient -> server", () => {
    const box = nacl.box(new Uint8Array(64), nonce("CurveZMQHELLO---", 1), serverPublic, clientSecret)
    assert.strictEqual(
      hex(box),
      "3fc780d97ca169864dd85deee9599a695b6a48ab29f486181e07d0ce626ea1d2f7413adb9692fbe1327a7ea60c93d4d355ab4f765756b3787193af9155f6466668fa6cabb8f0123fb4a112499c31de7a"
    )
    assert.strictEqual(box.length, 80)
    assert.isNotNull(nacl.box.open(box, nonce("CurveZMQHELLO---", 1), clientPublic, serverSecret))
  })

  it("golden MESSAGE: name, short nonce, box of flags 0x01 (MORE) + payload; nonces must increase", () => {
    const shared = nacl.box.before(serverPublic, clientSecret)
    const client = Curve.makeCipher({ sharedKey: shared, isServer: false, nextNonce: 3, peerNonce: 1 })
    const body = client.encrypt(true, false, new TextEncoder().encode("hello"))
    assert.strictEqual(hex(body), "074d4553534147450000000000000003d0672064d812be6cd63cf2d52db21ab2a5117ce5c449")
    // The box opens with the server's view of the same keys and the client's nonce prefix.
    const plain = nacl.box.open(body.subarray(16), nonce("CurveZMQMESSAGEC", 3), clientPublic, serverSecret)
    assert.strictEqual(hex(plain!), hex(Uint8Array.of(0x01, ...new TextEncoder().encode("hello"))))

    const server = Curve.makeCipher({ sharedKey: nacl.box.before(clientPublic, serverSecret), isServer: true, nextNonce: 2, peerNonce: 2 })
    const frame = Either.getOrThrow(server.decrypt(body))
    assert.deepStrictEqual([frame.more, frame.command, new TextDecoder().decode(frame.body)], [true, false, "hello"])
    // Replayed: refused.
    assert.strictEqual(Either.flip(server.decrypt(body)).pipe(Either.getOrThrow).reason, "HandshakeFailed")
    // Tampered: refused.
    const next = client.encrypt(false, true, Uint8Array.of(1, 2, 3))
    next[next.length - 1]! ^= 1
    assert.isTrue(Either.isLeft(server.decrypt(next)))
    // COMMAND travels as 0x02 inside the box.
    const command = client.encrypt(false, true, Uint8Array.of(9))
    const opened = Either.getOrThrow(server.decrypt(command))
    assert.deepStrictEqual([opened.more, opened.command], [false, true])
  })
})
