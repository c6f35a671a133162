// The emulator's public types. index.ts re-exports them; tests code against these names.

export type RouteName =
  | 'oidctoken'
  | 'serviceendpoint'
  | 'entra.token'
  | 'entra.openid'
  | 'entra.discovery'
  | 'entra.keys'
  | 'imds'
  | 'acr.exchange'
  | 'acr.token'
  | 'acr.v2';

export type Fault =
  | { kind: 'status'; status: number; body?: string; headers?: Record<string, string> }
  | { kind: '429'; retryAfterSeconds: number }
  | { kind: 'reset' }
  | { kind: 'hang' }
  | { kind: 'invalid-json' }
  | { kind: 'html203' }
  | { kind: 'null-oidc' };

export interface FederatedCredential {
  issuer: string;
  subject: string;
  audiences: string[];
}

export interface AppRegistration {
  clientId: string;
  tenantId: string;
  displayName?: string;
  disabled?: boolean;
  secrets?: { value: string; endDateTime: string }[];
  /** A client assertion signed with the certificate's key is matched by its x5t or x5t#S256 header. */
  certificates?: { certificatePem: string; endDateTime?: string }[];
  federatedCredentials?: FederatedCredential[];
}

export interface ServiceConnection {
  id: string;
  name: string;
  /** default 'web' */
  projectName?: string;
  scheme: 'WorkloadIdentityFederation' | 'ServicePrincipal' | 'ManagedServiceIdentity';
  tenantId: string;
  clientId: string;
  subscriptionId?: string;
  subscriptionName?: string;
  /** default 'vstoken' */
  issuerMode?: 'vstoken' | 'entra';
  isReady?: boolean;
  operationStatus?: { state: string; statusMessage: string };
  createdBy?: { displayName: string; id: string };
  /**
   * ServicePrincipal only: what the agent hands the task. Default 'spnKey' with the app's first
   * secret (or 'spnCertificate' when servicePrincipalCertificate is set).
   */
  authenticationType?: 'spnKey' | 'spnCertificate';
  servicePrincipalKey?: string;
  /** PEM with the certificate and its unencrypted private key, as the agent passes it */
  servicePrincipalCertificate?: string;
}

export interface ManagedIdentity {
  clientId: string;
  tenantId: string;
  objectId?: string;
}

/**
 * An Azure Container Registry. The emulator serves its /oauth2/* and /v2/* for requests whose Host
 * header is loginServer, so several registries share the one HTTPS port (127.0.0.1:<port>,
 * localhost:<port>, or any name a client reaches it by with TLS server name localhost).
 */
export interface RegistryRegistration {
  /** 'host:port' as clients see it, e.g. emu.host or `localhost:${port}`; also the token service */
  loginServer: string;
  /** the registry's tenant: exchanges of tokens from other tenants are refused */
  tenantId: string;
  /** refuse ARM-audience Entra tokens at /oauth2/exchange (az acr config authentication-as-arm update --status disabled) */
  authenticationAsArmDisabled?: boolean;
  /** http://127.0.0.1:<port> of a real registry (docker-registry) that /v2/* is proxied to */
  upstream?: string;
  /** client ids (or object ids) of the identities with AcrPush; default: any app or managed identity the emulator knows */
  allowedClientIds?: string[];
}

export interface RegistryTokenSigner {
  /** PEM of the self-signed certificate of the key that signs registry refresh and access tokens */
  certificatePem: string;
  /** a file with certificatePem: docker-registry's auth.token.rootcertbundle */
  certificatePath: string;
  /** the iss of registry tokens: docker-registry's auth.token.issuer */
  issuer: string;
}

export interface EmulatorOptions {
  /** default 0 = ephemeral */
  port?: number;
  /** where the PKI files go (and are reused from on the next start); default a fresh mkdtemp, removed by stop() */
  dir?: string;
}

export interface TokenRequestRecord {
  clientId: string;
  scope: string;
  grantType: string;
  assertionKind: 'federated' | 'certificate' | 'secret';
}

export interface Jwk {
  kty: string;
  use: string;
  kid: string;
  n: string;
  e: string;
  x5t?: string;
  x5c?: string[];
  issuer?: string;
}

export interface Emulator {
  /** 'https://127.0.0.1:<port>' (no trailing slash) */
  readonly url: string;
  /** '127.0.0.1:<port>' */
  readonly host: string;
  /** PEM of the test CA that signed the server certificate */
  readonly caCertPath: string;
  readonly organization: { name: string; id: string };
  /** `${url}/contoso/` (trailing slash, like System.CollectionUri) */
  readonly collectionUri: string;
  /** GUID of project 'web' */
  readonly projectId: string;
  /** the System.PlanId / System.JobId that agentEnvironment hands a task (any GUIDs are accepted) */
  readonly planId: string;
  readonly jobId: string;
  /** Authorization: Bearer <it> is required at the Azure DevOps routes; assigning a new one revokes the old */
  jobAccessToken: string;
  /** default 600; negative makes idTokens already expired */
  idTokenLifetimeSeconds: number;
  addApp(app: AppRegistration): void;
  addServiceConnection(sc: ServiceConnection): void;
  addManagedIdentity(mi: ManagedIdentity): void;
  getApp(clientId: string): AppRegistration | undefined;
  getServiceConnection(id: string): ServiceConnection | undefined;
  /** the issuer/subject a connection's idToken carries (what its federated credential must say) */
  expectedFederation(connectionId: string): { issuer: string; subject: string; audience: 'api://AzureADTokenExchange' };
  inject(route: RouteName, fault: Fault, times?: number): void;
  clearFaults(): void;
  count(route: RouteName): number;
  counts(): Record<string, number>;
  resetCounts(): void;
  /** every secret the emulator issued or accepts as a credential (ACR refresh and access tokens too), to scan task output for leaks */
  issuedTokens(): string[];
  /** the last successful Entra token request, without its secrets */
  lastTokenRequest(): TokenRequestRecord | undefined;
  /** public keys: the Azure DevOps issuer key (signs idTokens) and the Entra key (signs access tokens) */
  signingKeys(): { devops: Jwk; entra: Jwk };
  /** registers (or replaces) an Azure Container Registry served at its loginServer's Host header */
  addRegistry(registry: RegistryRegistration): void;
  /** what docker-registry's auth.token needs to trust the registry access tokens the emulator issues */
  registryTokenSigner(): RegistryTokenSigner;
  /** a self-signed client certificate + unencrypted key (PEM) for the certificate scheme */
  makeClientCertificate(commonName: string): { certificatePem: string; privateKeyPem: string };
  stop(): Promise<void>;
}
