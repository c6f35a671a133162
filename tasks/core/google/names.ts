/** The forms Google gives its names, shared by the task's inputs, its connection type and Validate. */
export const PROVIDER = /^projects\/(\d{1,20})\/locations\/global\/workloadIdentityPools\/([a-z0-9][a-z0-9-]{2,30}[a-z0-9])\/providers\/([a-z0-9][a-z0-9-]{2,30}[a-z0-9])$/;
// A service account's e-mail as Google documents it: <name>@<project id>.iam.gserviceaccount.com,
// <project number>-compute@developer.gserviceaccount.com, <project id>@appspot.gserviceaccount.com
// (a domain-scoped project's id with dots); lower-case letters, digits, '-' and dots between labels
// only, so that it stands in the generateAccessToken URL as it is; at most 160 characters, so that
// the URL stays within the 256 that google-auth-library reads.
const LABEL = '[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?';
export const SERVICE_ACCOUNT = new RegExp(`^(?=.{1,160}$)(?=.{1,64}@)${LABEL}(?:\\.${LABEL})*@(?:${LABEL}\\.)+gserviceaccount\\.com$`);
export const PROJECT_ID = /^([a-z0-9][a-z0-9.-]{0,62}:)?[a-z][a-z0-9-]{4,28}[a-z0-9]$/;
