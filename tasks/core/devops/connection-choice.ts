/**
 * Tasks that take either an Azure Resource Manager connection (azureSubscription, task.json name
 * connectedServiceNameARM) or a connection of the extension's own type (awsConnection,
 * gcpConnection): which one the step is for.
 *
 * connectionType is the classic editor's selector (a pickList whose visibleRule shows one of the two
 * inputs). The agent hands its default (azureResourceManager) when YAML leaves it out, so with that
 * value the connection is inferred from the one input that is set; both set is an InputError naming
 * both. An explicit connectionType of the own type wins, and an azureSubscription left set (a hidden
 * input in the classic editor) is ignored with a warning, as FetchOidcToken@1 does.
 */
import { stringInput } from '../agent/inputs';
import { safe, warn } from '../agent/output';
import { InputError } from '../http/failures';
import { ENDPOINT_TYPE_LABELS, FederatedEndpoint, FederatedEndpointType } from './federated-endpoint';

export const ARM_INPUT = { input: 'connectedServiceNameARM', yaml: 'azureSubscription' } as const;

export type ConnectionChoice<T extends FederatedEndpointType> = 'azureResourceManager' | T;

/** `own`: the type of the task's own connection input; `ownInput`: its name (task.json name = YAML name). */
export function chooseConnection<T extends FederatedEndpointType>(own: T, ownInput: string): ConnectionChoice<T> {
  const raw = stringInput('connectionType') ?? 'azureResourceManager';
  const types = ['azureResourceManager', own];
  const type = types.find((t) => t.toLowerCase() === raw.toLowerCase()) as ConnectionChoice<T> | undefined;
  if (!type) {
    throw new InputError('connectionType', `'${raw.replace(/[^\w -]/g, '?')}' is not a connection type of this task`, `Set connectionType to azureResourceManager or ${own}, or leave it out and set one of ${ARM_INPUT.yaml} or ${ownInput}.`);
  }
  const armSet = stringInput(ARM_INPUT.input) !== undefined;
  const ownSet = stringInput(ownInput) !== undefined;
  if (type === own) {
    if (armSet) warn(`connectionType is ${own}: ${ARM_INPUT.yaml} is ignored.`);
    return own;
  }
  if (armSet && ownSet) {
    throw new InputError(
      ARM_INPUT.yaml,
      `${ARM_INPUT.yaml} and ${ownInput} are both set; the task gets its idToken from one connection`,
      `Keep one: ${ownInput} (a service connection of type "${ENDPOINT_TYPE_LABELS[own]}", which holds the settings) or ${ARM_INPUT.yaml} (an Azure Resource Manager connection, with the settings as inputs).`,
    );
  }
  if (ownSet) return own;
  if (!armSet) {
    throw new InputError(
      ownInput,
      'no service connection is given',
      `Set ${ownInput} to a service connection of type "${ENDPOINT_TYPE_LABELS[own]}" (or ${ARM_INPUT.yaml} to an Azure Resource Manager connection with workload identity federation).`,
    );
  }
  return 'azureResourceManager';
}

/**
 * A bad setting of a connection of the extension's own type: the same validators as the inputs, the
 * message naming the connection, its field and where an admin fixes it.
 */
export function connectionFieldError(ep: FederatedEndpoint, key: string, label: string): (problem: string, fix: string) => InputError {
  return (problem, fix) =>
    new InputError(
      ep.input,
      safe`the ${label} (${key}) of service connection '${ep.id}': ` + problem,
      `Edit the service connection (Project settings > Service connections > the connection > Edit) and correct its ${label}. ${fix}`,
    );
}

/**
 * An input that names another value than the connection's, where the connection is the authority
 * (an admin set it, and approves which pipelines use it): refused with both values.
 */
export function differsFromConnection(ep: FederatedEndpoint, input: string, given: string, own: string, label: string, fix: string): InputError {
  return new InputError(
    input,
    safe`'${given}' differs from the ${label} of service connection '${ep.id}' ('${own}'); with ${ep.input} the connection's ${label} is used and a pipeline may not change it`,
    fix,
  );
}
