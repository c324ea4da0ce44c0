import { describe, expect, it } from 'vitest';
import { createLogger } from '../../shared/logger.js';
import { rollBack } from '../../shared/registration/rollback.js';
import { awsError, certificate, RecordingIot } from '../support/recording-iot.js';

const silent = createLogger({}, 'error', () => {});
const noWait = async () => {};
const everything = {
  certificate: true,
  thing: true,
  policyAttached: true,
  thingAttached: true,
  certificateActive: true,
};
const target = { policyName: 'device-policy', thingName: 'SN-1', certificate };

describe('rollBack', () => {
  it('detaches, deactivates, deletes the certificate, then deletes the thing, in that order', async () => {
    const iot = new RecordingIot();

    const outcome = await rollBack(iot, target, everything, silent, noWait);

    expect(iot.calls.slice(0, 2).sort()).toEqual(['detachPolicy', 'detachThingPrincipal']);
    expect(iot.calls.slice(2)).toEqual(['deactivateCertificate', 'deleteCertificate', 'deleteThing']);
    expect(outcome).toEqual({
      rollback: 'COMPLETED',
      leftovers: [],
      progress: {
        certificate: false,
        thing: false,
        policyAttached: false,
        thingAttached: false,
        certificateActive: false,
      },
    });
  });

  it('leaves a thing it did not create alone', async () => {
    const iot = new RecordingIot();

    await rollBack(iot, target, { ...everything, thing: false }, silent, noWait);

    expect(iot.calls).not.toContain('deleteThing');
  });

  it('retries a certificate delete that conflicts while a detach propagates', async () => {
    const iot = new RecordingIot();
    let conflicts = 2;
    iot.deleteCertificate = async () => {
      iot.calls.push('deleteCertificate');
      if (conflicts-- > 0) throw awsError('DeleteConflictException');
    };

    const outcome = await rollBack(iot, target, everything, silent, noWait);

    expect(iot.calls.filter((call) => call === 'deleteCertificate')).toHaveLength(3);
    expect(outcome.rollback).toBe('COMPLETED');
  });

  it('reports an inactive certificate it could not delete as a leftover, and never leaves it active', async () => {
    const iot = new RecordingIot().failOn('deleteCertificate', () => awsError('InternalFailureException'));

    const outcome = await rollBack(iot, target, everything, silent, noWait);

    expect(iot.calls).toContain('deactivateCertificate');
    expect(outcome.rollback).toBe('INCOMPLETE');
    expect(outcome.leftovers).toEqual([`inactive-certificate:${certificate.certificateId}`]);
    expect(outcome.progress.certificate).toBe(true);
  });

  it('reports a certificate it could not deactivate as an active leftover', async () => {
    const iot = new RecordingIot().failOn('deactivateCertificate', () => awsError('ThrottlingException'));

    const outcome = await rollBack(iot, target, everything, silent, noWait);

    expect(outcome.leftovers).toContain(`active-certificate:${certificate.certificateId}`);
    expect(iot.calls).not.toContain('deleteCertificate');
  });

  it('keeps a thing whose certificate could not be detached, and says so', async () => {
    const iot = new RecordingIot().failOn('detachThingPrincipal', () =>
      awsError('ServiceUnavailableException'),
    );

    const outcome = await rollBack(iot, target, everything, silent, noWait);

    expect(iot.calls).not.toContain('deleteThing');
    expect(outcome.leftovers).toEqual(
      expect.arrayContaining([
        'thing-attachment:SN-1',
        `inactive-certificate:${certificate.certificateId}`,
        'thing:SN-1',
      ]),
    );
  });
});
