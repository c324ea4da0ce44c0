/** An AWS IoT error as the REST-JSON protocol carries it: status, x-amzn-errortype, {message}. */
export class IotError extends Error {
  constructor(
    readonly type: IotErrorType,
    message: string,
  ) {
    super(message);
    this.name = type;
  }

  get status(): number {
    return STATUS[this.type];
  }
}

/** HTTP statuses from the AWS IoT API reference (ThrottlingException is 400 there, not 429). */
const STATUS = {
  InvalidRequestException: 400,
  ThrottlingException: 400,
  MalformedPolicyException: 400,
  UnauthorizedException: 401,
  ResourceNotFoundException: 404,
  CertificateStateException: 406,
  ResourceAlreadyExistsException: 409,
  DeleteConflictException: 409,
  VersionConflictException: 409,
  LimitExceededException: 410,
  InternalFailureException: 500,
  ServiceUnavailableException: 503,
} as const;

export type IotErrorType = keyof typeof STATUS;

export function isIotErrorType(value: string): value is IotErrorType {
  return value in STATUS;
}
