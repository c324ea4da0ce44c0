/**
 * @peculiar/x509, ready to use: the sandbox's X.509 library (certificates, CSRs) on Node's WebCrypto.
 * Import it from here, never from the package: the library resolves its algorithms through tsyringe,
 * which needs a Reflect metadata polyfill loaded before it.
 */
import 'reflect-metadata';
import { webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';

x509.cryptoProvider.set(webcrypto);

export { x509 };
