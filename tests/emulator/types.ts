// The emulator's public types. index.ts re-exports them; tests code against these names.

export type RouteName =
  | 'oidctoken'
  | 'serviceendpoint'
  | 'devops.projects'
  | 'devops.endpoints'
  | 'devops.executionHistory'
  | 'devops.resourceArea'
  | 'devops.identities'
  | 'entra.token'
  | 'entra.openid'
  | 'entra.discovery'
  | 'entra.keys'
  | 'imds'
  | 'acr.exchange'
  | 'acr.token'
  | 'acr.v2'
  | 'arm.subscription'
  | 'arm.permissions'
  | 'arm.roleDefinitions'
  | 'graph.application'
  | 'graph.servicePrincipal'
  | 'sts.assumeRoleWithWebIdentity'
  | 'sts.getCallerIdentity'
  | 'gcp.sts.token'
  | 'gcp.iam.generateAccessToken'
  | 'vault.login'
  | 'vault.mounts'
  | 'vault.read'
  | 'vault.lookup-self'
  | 'vault.revoke-self'
  | 'vault.other';

export type Fault =
  | { kind: 'status'; status: number; body?: string; headers?: Record<string, string> }
  /** The service's 429 (its own body); Retry-After in seconds, or as the service sends it (Vault: an HTTP date that far ahead, with its X-Ratelimit-* headers). */
  | { kind: '429'; retryAfterSeconds: number }
  /**
   * A redirect to the same path and query at another origin, with no body, as a standby Vault node
   * answers (307 to the active node, `to` its api_addr, e.g. 'https://vault-2.fabrikam.com:8200').
   */
  | { kind: 'redirect'; to: string; status?: 301 | 302 | 303 | 307 | 308 }
  | { kind: 'reset' }
  | { kind: 'hang' }
  | { kind: 'invalid-json' }
  | { kind: 'html203' }
  | { kind: 'null-oidc' }
  /**
   * An answer of `bytes` (default 64 MiB) streamed in chunks from one reused buffer, never held
   * whole; with `contentLength` it is announced, otherwise sent chunked. Stops when the client
   * hangs up. As a proxy's or portal's page would, it starts like JSON and never ends.
   */
  | { kind: 'huge-body'; bytes?: number; contentLength?: boolean; status?: number };

export interface FederatedCredential {
  issuer: string;
  subject: string;
  audiences: string[];
}

export interface AppRegistration {
  clientId: string;
  tenantId: string;
  displayName?: string;
  /** the service principal is disabled: Entra answers AADSTS7000112, Graph says accountEnabled false */
  disabled?: boolean;
  /**
   * Graph's passwordCredentials are built from these (never with the value). keyId defaults to a
   * stable GUID per secret, startDateTime to when the app was added (or endDateTime minus 180 days
   * when that is earlier), displayName to null.
   */
  secrets?: { value: string; endDateTime: string; startDateTime?: string; displayName?: string; keyId?: string }[];
  /**
   * A client assertion signed with the certificate's key is matched by its x5t or x5t#S256 header.
   * Graph's keyCredentials: start and end from the certificate's validity unless endDateTime is
   * given, displayName the certificate's subject ('CN=...'), customKeyIdentifier its SHA-1 thumbprint.
   */
  certificates?: { certificatePem: string; endDateTime?: string; displayName?: string; keyId?: string }[];
  federatedCredentials?: FederatedCredential[];
  /** object id of the application object (Graph's application id); default a GUID kept when the app is added again */
  objectId?: string;
  /** object id of the app's service principal: the oid of its access tokens; default a GUID kept when the app is added again */
  servicePrincipalObjectId?: string;
  /**
   * Microsoft Graph application permission of the app's service principal. 'read' grants
   * Application.Read.All: its Graph tokens carry roles ["Application.Read.All"], which Graph
   * requires for applications and servicePrincipals. Default 'forbidden' (no Graph permission):
   * 403 Authorization_RequestDenied. Decided when the token is issued, as in Entra.
   */
  graphAccess?: 'read' | 'forbidden';
}

/** What the pipeline's own token says of the run: def_id, rpo_id, rpo_uri, rpo_ver, rpo_ref, run_id. */
export interface PipelineRun {
  definitionId: string;
  repositoryId: string;
  repositoryUri: string;
  /** the commit */
  repositoryVersion: string;
  repositoryRef: string;
  runId: string;
}

export interface ServiceConnection {
  id: string;
  name: string;
  /** default 'web' */
  projectName?: string;
  /** The AzureRM schemes; 'None' for the extension's own types (WorkloadIdentityAws/Gcp/Oidc), 'UsernamePassword' for a generic connection. */
  scheme: 'WorkloadIdentityFederation' | 'ServicePrincipal' | 'ManagedServiceIdentity' | 'None' | 'UsernamePassword';
  /** '' for a connection that is not an Azure Resource Manager one */
  tenantId: string;
  /** '' for a connection that is not an Azure Resource Manager one */
  clientId: string;
  subscriptionId?: string;
  subscriptionName?: string;
  /** The connection's URL (a generic or OpenID Connect connection's service URL). */
  url?: string;
  /**
   * A non-AzureRM type's settings as the admin entered them (e.g. roleArn, region for
   * WorkloadIdentityAws; workloadIdentityProvider for WorkloadIdentityGcp): the scheme's
   * authorization parameters the agent hands a task.
   */
  parameters?: Record<string, string>;
  /** default 'vstoken' */
  issuerMode?: 'vstoken' | 'entra';
  isReady?: boolean;
  operationStatus?: { state: string; statusMessage: string };
  /** Azure DevOps's IdentityRef of the creator; id defaults to a GUID derived from displayName, uniqueName to '' */
  createdBy?: { displayName: string; id?: string; uniqueName?: string; inactive?: boolean };
  /**
   * What Azure DevOps's record says (authorization.parameters.workloadIdentityFederationIssuer /
   * ...Subject of the service endpoint), when it should differ from what the idToken carries.
   * Default: the idToken's (expectedFederation()).
   */
  expectedIssuer?: string;
  expectedSubject?: string;
  /**
   * Whether the job's identity may read the service endpoint: 'forbidden' answers 403 with
   * ServiceEndpointException, 'unauthorized' 401 with UnauthorizedRequestException (TF400813).
   * Default 'ok'. The Oidctoken API is not affected.
   */
  endpointAccess?: 'ok' | 'forbidden' | 'unauthorized';
  /**
   * ServicePrincipal only: what the agent hands the task. Default 'spnKey' with the app's first
   * secret (or 'spnCertificate' when servicePrincipalCertificate is set).
   */
  authenticationType?: 'spnKey' | 'spnCertificate';
  servicePrincipalKey?: string;
  /** PEM with the certificate and its unencrypted private key, as the agent passes it */
  servicePrincipalCertificate?: string;
  /** The endpoint type the list API filters on: default 'azurerm'; 'dockerregistry' for a Docker registry (ACR) connection. */
  type?: 'azurerm' | 'dockerregistry' | (string & {});
  /** data.environment: default 'AzureCloud' (also 'AzureUSGovernment', 'AzureChinaCloud', 'AzureStack') */
  environment?: string;
  /** data.creationMode: default 'Automatic' */
  creationMode?: 'Automatic' | 'Manual';
  /** Further projects the connection is shared with (serviceEndpointProjectReferences; isShared true). */
  sharedWith?: string[];
  /** The last run that used the connection (executionhistory); default none: never used. */
  lastUsed?: { pipeline: string; runName?: string; result: 'succeeded' | 'failed' | 'canceled' | (string & {}); finishTime: string };
}

/** A project of the organisation, listed by GET _apis/projects (paged). */
export interface ProjectRegistration {
  name: string;
  /** default a GUID derived from the name */
  id?: string;
  /**
   * A fault every request about this project answers with (its endpoint list and the connections'
   * execution histories), e.g. { kind: 'status', status: 403 } or 500, for as long as it is set.
   */
  fault?: Fault;
}

/** An Azure DevOps identity (a user or a service principal), as GET _apis/identities returns it. */
export interface IdentityRegistration {
  id: string;
  displayName: string;
  /** default true; false for someone who has left the organisation */
  isActive?: boolean;
}

/** One request the emulator received, in arrival order. */
export interface RequestRecord {
  /** the route's name, or 'unmatched' */
  route: string;
  method: string;
  /** the Host header */
  host: string;
  /** path and query */
  path: string;
  /** Date.now() when it arrived (after any latency it waited) */
  at: number;
  /** the status answered, once answered */
  status?: number;
  /** for a Vault route: what the request carried */
  vault?: VaultRequestDetails;
}

/** What a request to Vault carried, as the emulator recorded it. */
export interface VaultRequestDetails {
  /** the X-Vault-Namespace header, as sent; undefined without one (a namespace in the path is in `path`) */
  namespaceHeader?: string;
  /** whether it carried a token (X-Vault-Token, or Authorization: Bearer) */
  tokenPresent: boolean;
  /** the accessor of that token when the emulator's Vault issued it (revoked or expired ones too) */
  accessor?: string;
}

export interface ManagedIdentity {
  clientId: string;
  tenantId: string;
  /** the oid of its tokens and its service principal's Graph id; default a random GUID */
  objectId?: string;
  displayName?: string;
  /** as AppRegistration.graphAccess */
  graphAccess?: 'read' | 'forbidden';
}

/** An Azure subscription served at GET /subscriptions/{subscriptionId}. */
export interface SubscriptionRegistration {
  subscriptionId: string;
  tenantId: string;
  /** default 'Subscription <first 8 hex digits>' */
  displayName?: string;
  /** default 'Enabled' */
  state?: 'Enabled' | 'Disabled' | 'Warned' | 'PastDue' | 'Deleted';
}

export type BuiltInRoleName = 'Owner' | 'Contributor' | 'Reader' | 'User Access Administrator' | 'AcrPush' | 'AcrPull';

export interface RoleAssignment {
  /** the app's client id or its service principal object id, a managed identity's client or object id (a token's appid or oid) */
  principalId: string;
  /** '/' or an ARM resource id under /subscriptions/{guid} (…/resourceGroups/rg, …/providers/Microsoft.ContainerRegistry/registries/name) */
  scope: string;
  /** a built-in role's name (case-insensitive) or definition GUID */
  role: BuiltInRoleName | (string & {});
}

export interface RolePermission {
  actions: string[];
  notActions: string[];
  dataActions: string[];
  notDataActions: string[];
}

/** A built-in Azure role definition (the properties ARM returns, flattened). */
export interface RoleDefinition {
  /** the definition's GUID (ARM's name) */
  id: string;
  roleName: string;
  description: string;
  permissions: RolePermission[];
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

/**
 * An IAM OpenID Connect identity provider in an AWS account. AssumeRoleWithWebIdentity finds it by
 * the token's iss ('https://' + url) in the account of the requested role.
 */
export interface AwsOidcProvider {
  /** the issuer without https://, e.g. 'vstoken.dev.azure.com/<org id>' or 'login.microsoftonline.com/<tenant>/v2.0' (a leading https:// is dropped) */
  url: string;
  /** the audiences (IAM's client IDs) a token's aud must be one of, e.g. 'api://AzureADTokenExchange' */
  clientIds: string[];
  /** 12 digits */
  accountId: string;
}

/** An IAM role whose trust policy lets a federated OIDC principal assume it. */
export interface AwsRole {
  /** arn:aws:iam::<12 digits>:role/<name> (a path before the name is allowed) */
  arn: string;
  /** the role's MaxSessionDuration, 3600..43200; default 3600 */
  maxSessionDurationSeconds?: number;
  /** the trust policy: Federated principal of this provider url, with StringEquals on <url>:sub and <url>:aud when given */
  trust: { issuer: string; sub?: string; aud?: string };
}

/** Temporary credentials the emulator's STS issued (AssumeRoleWithWebIdentity). */
export interface AwsSession {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken: string;
  /** ISO 8601 UTC, as in the response's Expiration */
  expiration: string;
  issuedAt: string;
  durationSeconds: number;
  roleArn: string;
  roleSessionName: string;
  /** arn:aws:sts::<account>:assumed-role/<role name>/<session name> */
  assumedRoleArn: string;
  /** AROA...:<session name> */
  assumedRoleId: string;
  accountId: string;
  /** the token's sub and the audience that matched the provider */
  subject: string;
  audience: string;
  /** the provider url (without https://) */
  provider: string;
  /** the session policy and policy ARNs the request passed, if any */
  policy?: string;
  policyArns: string[];
  /** the WebIdentityToken the session was assumed with, and the User-Agent of that request */
  webIdentityToken: string;
  userAgent: string;
}

/** A workload identity pool provider (OIDC) in a Google Cloud project. */
export interface GcpProvider {
  /** the project's number (digits), not its id */
  projectNumber: string;
  poolId: string;
  providerId: string;
  /** the issuer a token's iss must equal, e.g. https://vstoken.dev.azure.com/<org id> */
  issuerUri: string;
  /** a token's aud must be one of them; empty or absent: only https://iam.googleapis.com/<provider name> (Google's default) */
  allowedAudiences?: string[];
  /** default { 'google.subject': 'assertion.sub' }; values of the form assertion.<claim> */
  attributeMapping?: Record<string, string>;
  /** a CEL subset: clauses `attr == 'x'` or `attr.startsWith('x')` joined by && */
  attributeCondition?: string;
  /** default ACTIVE; DISABLED and DELETED answer invalid_target */
  state?: 'ACTIVE' | 'DISABLED' | 'DELETED';
}

/** A Google service account and who holds roles/iam.workloadIdentityUser on it (principal:// or principalSet:// members). */
export interface GcpServiceAccount {
  email: string;
  members: string[];
}

/** An access token the emulator's Google STS (federated) or IAM Credentials (impersonated) issued. */
export interface GcpAccessToken {
  token: string;
  kind: 'federated' | 'impersonated';
  /** principal://.../subject/<sub> for a federated token; serviceAccount:<email> for an impersonated one */
  principal: string;
  /** the provider's resource name the exchange went through */
  provider: string;
  scopes: string[];
  /** ISO 8601 */
  expiresAt: string;
}

/** A capability in a Vault ACL policy rule. */
export type VaultCapability = 'create' | 'read' | 'update' | 'patch' | 'delete' | 'list' | 'sudo' | 'deny';

/**
 * One `path "..." { capabilities = [...] }` block of a Vault ACL policy. The path is relative to the
 * policy's namespace; a trailing `*` is a prefix glob, a `+` segment matches any one segment. When
 * several rules match a request, the most specific one decides (Vault's priority rules); rules for
 * the same path in several of a token's policies add up, and `deny` wins.
 */
export interface VaultPolicyRule {
  path: string;
  capabilities: VaultCapability[];
}

/** Vault's JWT auth method at auth/<mount>, configured with OIDC discovery on the Azure DevOps issuer. */
export interface VaultJwtAuthConfig {
  /** the auth method's path; default 'jwt' (auth/jwt) */
  mount?: string;
  /** the Vault Enterprise namespace it is enabled in ('team-a', 'team-a/dev'); default the root */
  namespace?: string;
  /** bound_issuer: the iss a token must carry; default this emulator's Azure DevOps issuer (https://vstoken.dev.azure.com/<org id>); '' checks none */
  boundIssuer?: string;
  /** oidc_discovery_url; default boundIssuer (or the Azure DevOps issuer when that is '') */
  oidcDiscoveryUrl?: string;
  /**
   * 'unreachable': Vault cannot fetch the discovery document (and so the keys): every login answers
   * 400 "error configuring token validator: keyset configuration error: Get ...". Default 'reachable':
   * tokens are verified against the emulator's Azure DevOps signing key (devopsJwk).
   */
  keys?: 'reachable' | 'unreachable';
  /** default_role: the role of a login that names none */
  defaultRole?: string;
}

/** A role of the JWT auth method (auth/<mount>/role/<name>). Defaults are the emulator's, for the common case. */
export interface VaultJwtRole {
  /** default 'jwt' */
  mount?: string;
  namespace?: string;
  name: string;
  /** default 'jwt'; a login against an 'oidc' role is refused as Vault refuses it */
  roleType?: 'jwt' | 'oidc';
  /** default ['api://AzureADTokenExchange'] (Vault's own default is none); [] refuses tokens that carry an aud */
  boundAudiences?: string[];
  /** bound_subject: the sub a token must carry */
  boundSubject?: string;
  /** bound_claims: each claim must match one of its values (a list: any of them) */
  boundClaims?: Record<string, string | number | boolean | (string | number | boolean)[]>;
  /** default 'string'; 'glob' lets values use * (go-glob, strings only) */
  boundClaimsType?: 'string' | 'glob';
  /** the claim that names the entity alias (display name jwt-<value>); default 'sub' (Vault requires one to be set) */
  userClaim?: string;
  /** token_policies; "default" is added unless tokenNoDefaultPolicy */
  tokenPolicies: string[];
  /** token_ttl; default 900 */
  tokenTtlSeconds?: number;
  tokenNoDefaultPolicy?: boolean;
  /** clock_skew_leeway for nbf, exp and iat; default 60 (cap/jwt's); -1: none */
  clockSkewLeewaySeconds?: number;
}

/** A KV secrets engine mount. */
export interface VaultKvMount {
  /** 'secret', 'kv', 'team/kv' (no trailing slash needed) */
  path: string;
  version: 1 | 2;
  namespace?: string;
  /** version 1 only: mounted without a version option (`vault secrets enable kv`): options is null in the mount's entry */
  noVersionOption?: boolean;
}

/**
 * A secrets engine that is not KV. 'database' serves GET creds/<role>: a new username and password
 * under a lease the reading token owns (revoked with it). Other types answer every path as Vault
 * answers a path its backend does not have.
 */
export interface VaultMount {
  path: string;
  type: 'database' | (string & {});
  namespace?: string;
  /** database: the roles creds/<role> serves; default any name */
  roles?: string[];
  /** database: the leases' duration; default 3600 */
  leaseSeconds?: number;
}

/** A token the emulator's Vault issued at a login. */
export interface VaultTokenRecord {
  /** the client token (hvs.…); it is in issuedTokens() */
  token: string;
  accessor: string;
  /** the namespace it lives in: '' for the root, else 'team-a/' as Vault writes it */
  namespace: string;
  /** the auth method's path, e.g. 'auth/jwt/' */
  mount: string;
  role: string;
  /** token_policies, sanitized as Vault does (sorted, "default" added unless the role says not to) */
  policies: string[];
  /** the claims of the JWT it logged in with */
  claims: Record<string, unknown>;
  /** jwt-<user claim value> */
  displayName: string;
  entityId: string;
  /** ISO 8601 */
  issuedAt: string;
  expiresAt: string;
  revoked: boolean;
}

/** A lease the emulator's Vault issued (a database engine's credentials). */
export interface VaultLeaseRecord {
  /** '<mount>/creds/<role>/<id>' */
  leaseId: string;
  namespace: string;
  /** the accessor of the token that read it */
  tokenAccessor: string;
  /** the username the lease holds (its password is in issuedTokens()) */
  username: string;
  issuedAt: string;
  expiresAt: string;
  revoked: boolean;
}

/**
 * The emulator's HashiCorp Vault (with Enterprise namespaces), served only at `address` (reach it
 * through a mapping proxy: `proxyToEmulator(emu, [VAULT_AUTHORITY])`). Everything is per
 * namespace; namespaces are given without slashes at the ends ('team-a', 'team-a/dev').
 */
export interface VaultEmulator {
  /** 'https://vault.fabrikam.com:8200' */
  readonly address: string;
  /** enables (or reconfigures) the JWT auth method at auth/<mount> */
  configureJwtAuth(config?: VaultJwtAuthConfig): void;
  /** adds (or replaces) a role; the auth method must be configured */
  addJwtRole(role: VaultJwtRole): void;
  addKvMount(mount: VaultKvMount): void;
  addMount(mount: VaultMount): void;
  /** v1: sets the secret; v2: writes a new version. Returns the version (1 for v1). String values are added to issuedTokens(). */
  putSecret(mount: string, path: string, data: Record<string, unknown>, options?: { namespace?: string; customMetadata?: Record<string, string> }): number;
  /** v2: soft-deletes the latest version (a read then answers 404 with its metadata) */
  deleteLatestVersion(mount: string, path: string, options?: { namespace?: string }): void;
  /** adds (or replaces) an ACL policy; "default" exists in every namespace (lookup-self, revoke-self, ...) */
  addPolicy(name: string, rules: VaultPolicyRule[], options?: { namespace?: string }): void;
  /** creates a namespace (and its parents) */
  addNamespace(path: string): void;
  /** a sealed Vault answers every request 503 {"errors":["Vault is sealed"]} */
  setSealed(sealed: boolean): void;
  /** copies of every token issued, oldest first */
  tokens(): VaultTokenRecord[];
  /** copies of every lease issued, oldest first */
  leases(): VaultLeaseRecord[];
  /** whether Vault would accept this token now (issued here, not revoked, not expired) */
  isValid(token: string): boolean;
  /** makes one token (by token or accessor) or every token expired now; returns how many */
  expireToken(tokenOrAccessor?: string): number;
  /**
   * makes a revoked token (by token or accessor) live again, and the leases it made, as before
   * revoke-self: the bench runs one post-job step many times from the state its main step left.
   * Returns how many tokens were revoked.
   */
  reinstateToken(tokenOrAccessor: string): number;
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
  /** The pipeline's own token's lifetime (no serviceConnectionId): default idTokenLifetimeSeconds; 300 as observed in 2025. */
  pipelineTokenLifetimeSeconds: number | undefined;
  /** The claims of the pipeline's own token (org_id and prj_id come from the organisation and project). */
  readonly pipelineRun: PipelineRun;
  /**
   * Registers a job's plan under its hub (System.HostType): an Oidctoken request for that plan under
   * another hub is answered 404, as Azure DevOps answers a plan it does not find in the hub.
   */
  registerPlan(planId: string, hub: string): void;
  /** milliseconds every request waits before it is handled (default 0): the bench's network latency */
  latencyMs: number;
  /** the largest page GET _apis/projects answers, whatever $top asks (default 100) */
  projectPageSize: number;
  /**
   * the largest page of a project's GET _apis/serviceendpoint/endpoints (default 100): a longer list
   * is answered in pages, each but the last with x-ms-continuationtoken, the next read with &continuationToken=
   */
  endpointPageSize: number;
  /**
   * The projects (names or ids, any case) the identity reading the organisation may see; undefined
   * (the default): every project. GET _apis/projects leaves the others out, and a project read about
   * one of them answers 404 TF200016, as Azure DevOps answers for a project that does not exist.
   */
  visibleProjects: string[] | undefined;
  /**
   * The identity service's locationUrl the resource-area lookup answers; default the collection
   * URL at the host the request came to (same origin as the collection).
   */
  identityServiceUrl?: string;
  /** a project (listed by _apis/projects); adding it again replaces it (its fault too) */
  addProject(project: ProjectRegistration): void;
  /** an identity for _apis/identities; connections' creators are identities too (active unless createdBy.inactive) */
  addIdentity(identity: IdentityRegistration): void;
  /** lets an Entra access token for Azure DevOps (aud 499b84ac-...) of this app (client id or object id) read the organisation */
  addOrganizationMember(clientIdOrObjectId: string): void;
  /** every request since the last resetCounts(), in arrival order */
  requestLog(): RequestRecord[];
  /** the most requests that were being handled at once since the last resetCounts() */
  maxInFlight(): number;
  addApp(app: AppRegistration): void;
  addServiceConnection(sc: ServiceConnection): void;
  addManagedIdentity(mi: ManagedIdentity): void;
  /** a copy, with objectId and servicePrincipalObjectId (the oid of its tokens) filled in */
  getApp(clientId: string): AppRegistration | undefined;
  getServiceConnection(id: string): ServiceConnection | undefined;
  /** the issuer/subject a connection's idToken carries (what its federated credential must say) */
  expectedFederation(connectionId: string): { issuer: string; subject: string; audience: 'api://AzureADTokenExchange' };
  inject(route: RouteName, fault: Fault, times?: number): void;
  clearFaults(): void;
  count(route: RouteName): number;
  /** The Host header of every request that reached a route since the last resetCounts(), in order. */
  requestHosts(): { route: string; host: string }[];
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
  /** an Azure subscription ARM serves; adding it again replaces it */
  addSubscription(subscription: SubscriptionRegistration): void;
  /** a role assignment; it applies at its scope and every scope below it (by resource id prefix) */
  assignRole(assignment: RoleAssignment): void;
  /** removes the assignments equal to this one (same principal, scope and role); returns how many */
  unassignRole(assignment: RoleAssignment): number;
  /** the built-in role definitions ARM serves, with their real GUIDs */
  builtInRoles(): RoleDefinition[];
  /** registers (or replaces: same account and url) an IAM OIDC provider for AWS STS */
  addAwsOidcProvider(provider: AwsOidcProvider): void;
  /** registers (or replaces: same ARN) an IAM role that AssumeRoleWithWebIdentity can assume */
  addAwsRole(role: AwsRole): void;
  /** copies of the sessions STS issued, oldest first; their secret key and session token are in issuedTokens() */
  awsSessions(): AwsSession[];
  /** makes one issued session (or every one, without an argument) expired now; returns how many */
  expireAwsSession(accessKeyId?: string): number;
  /** registers (or replaces: same name) a Google workload identity pool provider */
  addGcpProvider(provider: GcpProvider): void;
  /** registers (or replaces) a Google service account and its workloadIdentityUser members */
  addGcpServiceAccount(account: GcpServiceAccount): void;
  /** copies of the Google access tokens issued, oldest first (their values are in issuedTokens()) */
  gcpTokens(): GcpAccessToken[];
  /** the HashiCorp Vault (https://vault.fabrikam.com:8200): its configuration, tokens and leases */
  readonly vault: VaultEmulator;
  /** a self-signed client certificate + unencrypted key (PEM) for the certificate scheme */
  makeClientCertificate(commonName: string): { certificatePem: string; privateKeyPem: string };
  stop(): Promise<void>;
}
