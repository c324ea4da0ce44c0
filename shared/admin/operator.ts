import type { APIGatewayProxyEventV2 } from 'aws-lambda';

/**
 * Who made an admin request, for the device's history: the IAM principal that HTTP API's AWS_IAM
 * authorization established (every admin route has it), its ARN.
 */
export function operatorOf(event: APIGatewayProxyEventV2): string {
  const context = event.requestContext as { authorizer?: { iam?: { userArn?: string } } };
  return context.authorizer?.iam?.userArn ?? 'operator';
}
