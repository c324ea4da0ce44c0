import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  randomBytes,
  sign,
  X509Certificate,
} from 'node:crypto';
import {
  bitString,
  booleanTrue,
  der,
  explicit,
  integer,
  NAME,
  name,
  octetString,
  oid,
  sequence,
  time,
  toPem,
} from './der-writer.js';

const ECDSA_WITH_SHA256 = '1.2.840.10045.4.3.2';
const EXT = {
  basicConstraints: '2.5.29.19',
  keyUsage: '2.5.29.15',
  extKeyUsage: '2.5.29.37',
  subjectAltName: '2.5.29.17',
  subjectKeyIdentifier: '2.5.29.14',
  authorityKeyIdentifier: '2.5.29.35',
} as const;
const CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';
const SERVER_AUTH = '1.3.6.1.5.5.7.3.1';

export interface IssuedX509 {
  der: Buffer;
  pem: string;
}

export interface IssueOptions {
  commonName: string;
  usage: 'client' | 'server';
  /** Subject alternative names, for server certificates. */
  ipAddresses?: string[];
  dnsNames?: string[];
  notAfter?: Date;
}

/**
 * The sandbox's certificate authority: issues real X.509 v3 certificates (EC P-256 CA, ECDSA
 * SHA-256 signatures) for device keys and for the credentials provider's TLS server.
 */
export class CertificateAuthority {
  readonly certificate: IssuedX509;
  private readonly key: KeyObject;
  private readonly keyId: Buffer;
  private readonly subject: Buffer;

  /**
   * A new CA (an EC P-256 key and a self-signed certificate), or, given `saved`, the CA that
   * `export()` wrote earlier (a persistent sandbox keeps its CA across restarts).
   */
  constructor(
    commonName = 'fleet-provisioning sandbox root CA',
    saved?: { certificatePem: string; keyPem: string },
  ) {
    this.key = saved
      ? createPrivateKey(saved.keyPem)
      : generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey;
    const spki = createPublicKey(this.key).export({ type: 'spki', format: 'der' });
    this.keyId = keyIdentifier(spki);
    this.subject = name([
      [NAME.organization, 'fleet-provisioning sandbox'],
      [NAME.commonName, commonName],
    ]);
    if (saved) {
      const certificate = new X509Certificate(saved.certificatePem);
      if (!certificate.checkPrivateKey(this.key))
        throw new Error('the saved CA key does not match its certificate');
      this.certificate = { der: certificate.raw, pem: saved.certificatePem };
      return;
    }
    const now = new Date();
    this.certificate = this.sign(
      this.subject,
      spki,
      now,
      new Date(now.getTime() + 10 * 365 * 24 * 3600 * 1000),
      [
        extension(EXT.basicConstraints, sequence(booleanTrue()), true),
        extension(EXT.keyUsage, der(0x03, Buffer.from([0x01, 0x06])), true), // keyCertSign, cRLSign
        extension(EXT.subjectKeyIdentifier, octetString(this.keyId)),
      ],
    );
  }

  /** The CA that `export()` saved (with the default common name, as the sandbox's own CA has). */
  static restore(saved: { certificatePem: string; keyPem: string }): CertificateAuthority {
    return new CertificateAuthority(undefined, saved);
  }

  /** The certificate and private key, PEM, for a later `CertificateAuthority.restore`. */
  export(): { certificatePem: string; keyPem: string } {
    return {
      certificatePem: this.certificate.pem,
      keyPem: this.key.export({ type: 'pkcs8', format: 'pem' }).toString(),
    };
  }

  /** Issues a certificate for the given public key (SubjectPublicKeyInfo DER). */
  issue(spki: Buffer, options: IssueOptions): IssuedX509 {
    const altNames = [
      ...(options.dnsNames ?? []).map((dns) => der(0x82, Buffer.from(dns, 'ascii'))),
      ...(options.ipAddresses ?? []).map((ip) => der(0x87, Buffer.from(ip.split('.').map(Number)))),
    ];
    const extensions = [
      extension(EXT.basicConstraints, sequence(), true),
      // digitalSignature + keyEncipherment: valid for EC and RSA client and server keys.
      extension(EXT.keyUsage, der(0x03, Buffer.from([0x05, 0xa0])), true),
      extension(EXT.extKeyUsage, sequence(oid(options.usage === 'server' ? SERVER_AUTH : CLIENT_AUTH))),
      extension(EXT.subjectKeyIdentifier, octetString(keyIdentifier(spki))),
      extension(EXT.authorityKeyIdentifier, sequence(der(0x80, this.keyId))),
      ...(altNames.length > 0 ? [extension(EXT.subjectAltName, sequence(...altNames))] : []),
    ];
    const notBefore = new Date(Date.now() - 60_000);
    // AWS IoT's certificates from CreateCertificateFromCsr are valid until the end of 2049.
    const notAfter = options.notAfter ?? new Date('2049-12-31T23:59:59Z');
    return this.sign(name([[NAME.commonName, options.commonName]]), spki, notBefore, notAfter, extensions);
  }

  private sign(
    subject: Buffer,
    spki: Buffer,
    notBefore: Date,
    notAfter: Date,
    extensions: Buffer[],
  ): IssuedX509 {
    const serial = randomBytes(16);
    serial[0] = ((serial[0] as number) & 0x7f) | 0x01;
    const algorithm = sequence(oid(ECDSA_WITH_SHA256));
    const tbs = sequence(
      explicit(0, integer(Buffer.from([2]))),
      integer(serial),
      algorithm,
      this.subject,
      sequence(time(notBefore), time(notAfter)),
      subject,
      spki,
      explicit(3, sequence(...extensions)),
    );
    const certificate = sequence(tbs, algorithm, bitString(sign('sha256', tbs, this.key)));
    return { der: certificate, pem: toPem(certificate, 'CERTIFICATE') };
  }
}

function extension(id: string, value: Buffer, critical = false): Buffer {
  return sequence(oid(id), ...(critical ? [booleanTrue()] : []), octetString(value));
}

/** RFC 5280 method 1, on the whole SPKI for simplicity: any stable, unique identifier will do. */
function keyIdentifier(spki: Buffer): Buffer {
  return createHash('sha1').update(spki).digest();
}
