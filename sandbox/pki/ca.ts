import { createPrivateKey, KeyObject, X509Certificate as NodeX509Certificate, webcrypto } from 'node:crypto';
import { x509 } from './x509.js';

const ECDSA_P256 = { name: 'ECDSA', namedCurve: 'P-256' } as const;
const ECDSA_SHA256 = { name: 'ECDSA', hash: 'SHA-256' } as const;
const DEFAULT_COMMON_NAME = 'fleet-provisioning sandbox root CA';
/** AWS IoT's certificates from CreateCertificateFromCsr are valid until the end of 2049. */
const AWS_IOT_NOT_AFTER = new Date('2049-12-31T23:59:59Z');

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

export interface SavedCa {
  certificatePem: string;
  keyPem: string;
}

/**
 * The sandbox's certificate authority: an EC P-256 key and a self-signed certificate, issuing X.509
 * v3 certificates (ECDSA with SHA-256) for device keys and for the credentials provider's TLS
 * server. Certificates are built and signed by @peculiar/x509, not by hand.
 */
export class CertificateAuthority {
  readonly certificate: IssuedX509;

  private constructor(
    private readonly x509Certificate: x509.X509Certificate,
    private readonly key: KeyObject,
    private readonly signingKey: webcrypto.CryptoKey,
  ) {
    this.certificate = issued(x509Certificate);
  }

  /** A new CA: a fresh key and a self-signed certificate valid for ten years. */
  static async create(commonName = DEFAULT_COMMON_NAME): Promise<CertificateAuthority> {
    const keys = await webcrypto.subtle.generateKey(ECDSA_P256, true, ['sign', 'verify']);
    const notBefore = new Date();
    const certificate = await x509.X509CertificateGenerator.createSelfSigned({
      name: [{ O: ['fleet-provisioning sandbox'] }, { CN: [commonName] }],
      notBefore,
      notAfter: new Date(notBefore.getTime() + 10 * 365 * 24 * 3600 * 1000),
      keys,
      signingAlgorithm: ECDSA_SHA256,
      extensions: [
        new x509.BasicConstraintsExtension(true, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      ],
    });
    return new CertificateAuthority(certificate, KeyObject.from(keys.privateKey), keys.privateKey);
  }

  /** The CA that `export()` saved earlier: a persistent sandbox keeps its CA across restarts. */
  static async restore(saved: SavedCa): Promise<CertificateAuthority> {
    const key = createPrivateKey(saved.keyPem);
    const certificate = new x509.X509Certificate(saved.certificatePem);
    if (!new NodeX509Certificate(saved.certificatePem).checkPrivateKey(key))
      throw new Error('the saved CA key does not match its certificate');
    const signingKey = await webcrypto.subtle.importKey(
      'pkcs8',
      key.export({ type: 'pkcs8', format: 'der' }),
      ECDSA_P256,
      false,
      ['sign'],
    );
    return new CertificateAuthority(certificate, key, signingKey);
  }

  /** The certificate and private key, PEM, for a later `CertificateAuthority.restore`. */
  export(): SavedCa {
    return {
      certificatePem: this.certificate.pem,
      keyPem: this.key.export({ type: 'pkcs8', format: 'pem' }).toString(),
    };
  }

  /** Issues a certificate for the given public key (SubjectPublicKeyInfo DER). */
  async issue(spki: Uint8Array, options: IssueOptions): Promise<IssuedX509> {
    const publicKey = new x509.PublicKey(spki);
    const altNames = [
      ...(options.dnsNames ?? []).map((value) => ({ type: 'dns' as const, value })),
      ...(options.ipAddresses ?? []).map((value) => ({ type: 'ip' as const, value })),
    ];
    const certificate = await x509.X509CertificateGenerator.create({
      subject: [{ CN: [options.commonName] }],
      // The CA certificate's own subject, byte for byte, so that chains build whatever encoded it.
      issuer: this.x509Certificate.subjectName,
      notBefore: new Date(Date.now() - 60_000),
      notAfter: options.notAfter ?? AWS_IOT_NOT_AFTER,
      publicKey,
      signingKey: this.signingKey,
      signingAlgorithm: ECDSA_SHA256,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(keyUsages(publicKey), true),
        new x509.ExtendedKeyUsageExtension([
          options.usage === 'server' ? x509.ExtendedKeyUsage.serverAuth : x509.ExtendedKeyUsage.clientAuth,
        ]),
        await x509.SubjectKeyIdentifierExtension.create(publicKey),
        new x509.AuthorityKeyIdentifierExtension(this.keyIdentifier()),
        ...(altNames.length > 0 ? [new x509.SubjectAlternativeNameExtension(altNames)] : []),
      ],
    });
    return issued(certificate);
  }

  /** The CA certificate's subject key identifier (hex): what issued certificates name as their authority. */
  private keyIdentifier(): string {
    const extension = this.x509Certificate.getExtension(x509.SubjectKeyIdentifierExtension);
    if (!extension) throw new Error('the CA certificate has no subject key identifier');
    return extension.keyId;
  }
}

/** DER and PEM, the PEM ending with a newline as AWS IoT's certificatePem does. */
function issued(certificate: x509.X509Certificate): IssuedX509 {
  return { der: Buffer.from(certificate.rawData), pem: `${certificate.toString('pem')}\n` };
}

/**
 * digitalSignature for every key (TLS client and server authentication); keyEncipherment only for
 * RSA, whose keys may also carry a TLS 1.2 key exchange (RFC 5480 does not allow it for EC keys).
 */
function keyUsages(publicKey: x509.PublicKey): x509.KeyUsageFlags {
  const rsa = publicKey.algorithm.name.startsWith('RSA');
  return x509.KeyUsageFlags.digitalSignature | (rsa ? x509.KeyUsageFlags.keyEncipherment : 0);
}
