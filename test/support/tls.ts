/**
 * Certificates for TLS tests, generated fresh with the `openssl` CLI: a CA per call, leaf certificates signed by
 * it (server certificates with DNS and IP subject alternative names, client certificates for mutual TLS).
 */
import { execFileSync } from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"

export interface Pem {
  readonly cert: string
  readonly key: string
}

export interface Authority extends Pem {
  /** Issues a certificate signed by this CA. `names` become DNS (or IP) subject alternative names. */
  readonly issue: (commonName: string, options?: { readonly names?: ReadonlyArray<string>; readonly client?: boolean }) => Pem
}

/** `undefined` when the `openssl` CLI works, else why not. */
export const missingOpenssl = (): string | undefined => {
  try {
    execFileSync("openssl", ["version"], { stdio: "ignore", timeout: 10_000 })
    return undefined
  } catch (error) {
    return `openssl CLI not usable: ${error instanceof Error ? error.message.split("\n")[0] : String(error)}`
  }
}

const isIp = (name: string) => /^[0-9.]+$/.test(name) || name.includes(":")

const openssl = (dir: string, args: ReadonlyArray<string>) =>
  execFileSync("openssl", args, { cwd: dir, stdio: ["ignore", "ignore", "pipe"], timeout: 30_000 })

/** Creates a self-signed CA (EC P-256 keys: fast to generate). */
export const makeAuthority = (commonName = "effect-wire test CA"): Authority => {
  const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "effect-wire-tls-"))
  try {
    openssl(dir, ["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "ca.key"])
    openssl(dir, [
      "req", "-x509", "-new", "-key", "ca.key", "-sha256", "-days", "2", "-subj", `/CN=${commonName}`,
      "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
      "-out", "ca.crt"
    ])
    const ca: Pem = {
      cert: Fs.readFileSync(Path.join(dir, "ca.crt"), "utf8"),
      key: Fs.readFileSync(Path.join(dir, "ca.key"), "utf8")
    }
    let serial = 1
    const issue: Authority["issue"] = (cn, options) => {
      const leafDir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "effect-wire-tls-"))
      try {
        Fs.writeFileSync(Path.join(leafDir, "ca.crt"), ca.cert)
        Fs.writeFileSync(Path.join(leafDir, "ca.key"), ca.key)
        const names = options?.names ?? []
        const san = names.map((n) => (isIp(n) ? `IP:${n}` : `DNS:${n}`)).join(",")
        const ext = [
          "basicConstraints=critical,CA:FALSE",
          "keyUsage=critical,digitalSignature,keyEncipherment",
          `extendedKeyUsage=${options?.client === true ? "clientAuth" : "serverAuth"}`,
          ...(san.length > 0 ? [`subjectAltName=${san}`] : [])
        ].join("\n")
        Fs.writeFileSync(Path.join(leafDir, "leaf.ext"), ext + "\n")
        openssl(leafDir, ["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "leaf.key"])
        openssl(leafDir, ["req", "-new", "-key", "leaf.key", "-subj", `/CN=${cn}`, "-out", "leaf.csr"])
        openssl(leafDir, [
          "x509", "-req", "-in", "leaf.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-set_serial", String(serial++),
          "-days", "2", "-sha256", "-extfile", "leaf.ext", "-out", "leaf.crt"
        ])
        return {
          cert: Fs.readFileSync(Path.join(leafDir, "leaf.crt"), "utf8"),
          key: Fs.readFileSync(Path.join(leafDir, "leaf.key"), "utf8")
        }
      } finally {
        Fs.rmSync(leafDir, { recursive: true, force: true })
      }
    }
    return { ...ca, issue }
  } finally {
    Fs.rmSync(dir, { recursive: true, force: true })
  }
}
