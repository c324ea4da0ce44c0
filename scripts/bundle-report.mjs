// Reports the register artifact's size and its module-initialisation time (a local proxy for the
// cold-start init phase): `npm run measure:bundle`. Packages first.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const RUNS = 7;
const env = { ...process.env, SLS_TELEMETRY_DISABLED: '1' };
execFileSync('npx', ['serverless', 'package'], { stdio: 'ignore', env });

const zip = '.serverless/register.zip';
const dir = mkdtempSync(join(tmpdir(), 'register-'));
execFileSync('unzip', ['-q', '-o', zip, '-d', dir]);
const bundle = join(dir, 'functions/register.mjs');
const kb = (path) => `${Math.round(statSync(path).size / 1024)} KB`;

const probe = `const t = performance.now(); await import(${JSON.stringify(bundle)}); process.stdout.write(String(performance.now() - t));`;
const times = [];
for (let i = 0; i < RUNS; i++) {
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', probe], {
    env: {
      ...env,
      DEVICES_TABLE: 'd',
      CLAIMS_TABLE: 'c',
      HISTORY_TABLE: 'h',
      IOT_POLICY_NAME: 'p',
      IOT_ROLE_ALIAS: 'r',
      AWS_REGION: 'eu-west-1',
    },
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  times.push(Number(out.toString()));
}
times.sort((a, b) => a - b);
console.log(`register.zip         ${kb(zip)}`);
console.log(`register.mjs         ${kb(bundle)} (minified, SDK bundled)`);
console.log(`register.mjs.map     ${kb(`${bundle}.map`)}`);
console.log(
  `module init (median of ${RUNS}, Node ${process.versions.node}): ${times[Math.floor(RUNS / 2)].toFixed(0)} ms`,
);
