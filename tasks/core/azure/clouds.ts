/** The Azure clouds a connection can point at, and the hosts each one uses. */

export interface Cloud {
  /** The connection's `environment` data parameter. */
  name: string;
  /** Microsoft Entra authority, with a trailing slash. */
  authorityHost: string;
  resourceManager: string;
  /** Login-server suffix of Azure Container Registry in this cloud. */
  acrSuffix: string;
}

export const CLOUDS: Record<string, Cloud> = {
  azurecloud: { name: 'AzureCloud', authorityHost: 'https://login.microsoftonline.com/', resourceManager: 'https://management.azure.com/', acrSuffix: '.azurecr.io' },
  azureusgovernment: { name: 'AzureUSGovernment', authorityHost: 'https://login.microsoftonline.us/', resourceManager: 'https://management.usgovcloudapi.net/', acrSuffix: '.azurecr.us' },
  azurechinacloud: { name: 'AzureChinaCloud', authorityHost: 'https://login.chinacloudapi.cn/', resourceManager: 'https://management.chinacloudapi.cn/', acrSuffix: '.azurecr.cn' },
};

export function cloudByName(name: string | undefined): Cloud | undefined {
  return CLOUDS[(name || 'AzureCloud').toLowerCase()];
}
