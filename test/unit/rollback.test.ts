import { describe, expect, it } from 'vitest';
import { createLogger } from '../../shared/logger.js';
import { rollBack } from '../../shared/registration/rollback.js';
import { awsError, certificate, RecordingIot } from '../support/recording-iot.js';

const silent = createLogger({}, 'error', () => {});
const noWait = { sleep: async () => {} };
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

  it('reports a certificate it could neither deactivate nor delete as an active leftover', async () => {
    const iot = new RecordingIot()
      .failOn('deactivateCertificate', () => awsError('ThrottlingException'))
      .failOn('deleteCertificate', () => awsError('CertificateStateException'));

    const outcome = await rollBack(iot, target, everything, silent, noWait);

    expect(outcome.leftovers).toContain(`active-certificate:${certificate.certificateId}`);
    expect(outcome.progress.certificateActive).toBe(true);
  });

  it('still deletes a certificate whose deactivation failed, since AWS IoT refuses to delete an active one', async () => {
    const iot = new RecordingIot().failOn('deactivateCertificate', () =>
      awsError('ServiceUnavailableException'),
    );

    const outcome = await rollBack(iot, target, everything, silent, noWait);

    expect(iot.calls).toContain('deleteCertificate');
    expect(outcome.rollback).toBe('COMPLETED');
  });

  it('retries deleting a thing that AWS IoT still sees as attached, until the deadline', async () => {
    const iot = new RecordingIot();
    let stillAttached = 3;
    iot.deleteThing = async () => {
      iot.calls.push('deleteThing');
      if (stillAttached-- > 0) throw awsError('InvalidRequestException');
    };

    const outcome = await rollBack(iot, target, everything, silent, noWait);

    expect(iot.calls.filter((call) => call === 'deleteThing')).toHaveLength(4);
    expect(outcome.rollback).toBe('COMPLETED');
  });

  it('gives a thing that stays attached past the deadline to the reconciler as a leftover', async () => {
    const iot = new RecordingIot().failOn('deleteThing', () => awsError('InvalidRequestException'));
    let now = 0;
    const sleep = async (ms: number) => {
      now += ms;
    };
    const clock = { now: () => now, sleep, deadline: 5_000 };

    const outcome = await rollBack(iot, target, everything, silent, clock);

    expect(outcome.leftovers).toEqual(['thing:SN-1']);
    expect(now).toBeLessThanOrEqual(5_000);
    expect(iot.calls.filter((call) => call === 'deleteThing').length).toBeGreaterThan(1);
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
