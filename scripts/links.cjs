// The package's links to its own documentation, set at package time (scripts/package.mjs), as the
// publisher and extension id are. The committed vss-extension.json and task.json files hold
// placeholders, never a URL: the project has no public address of its own.
//   {docs}/<file>[#<anchor>]  a file of the repository (README.md#security, PRIVACY.md, LICENSE)
//   {repository}              the repository itself (the manifest's `repository`)
//   {support}                 where to ask for help
// With --repository-url (a GitHub, GitLab or Azure Repos repository that holds this project), the
// files are links into it at its default branch and support is its issue tracker (GitHub, GitLab) or
// the Marketplace page's Q&A (Azure Repos has no issues). Without it, every link is the extension's
// own Marketplace page (publisher.extension-id), whose overview covers each task, and the package
// has no `repository`: none is invented.
'use strict';

const MARKETPLACE_ITEM = 'https://marketplace.visualstudio.com/items?itemName=';
const TOKEN = /\{(docs|repository|support)\}((?:\/[A-Za-z0-9._-]+)*)(?:#([a-z0-9-]+))?/g;

/**
 * The repository given at package time: an https URL of a GitHub, GitLab or Azure Repos repository,
 * without credentials, query or fragment; a trailing '/' or '.git' is dropped. Throws an Error whose
 * message says what to give.
 */
function parseRepositoryUrl(raw) {
  const hint = 'Give the https address of the Git repository that holds this project, e.g. https://github.com/<owner>/<repo>, https://gitlab.com/<group>/<repo> or https://dev.azure.com/<org>/<project>/_git/<repo>.';
  let u;
  try {
    u = new URL(raw);
  } catch {
    throw new Error(`The repository URL '${raw}' is not a URL. ${hint}`);
  }
  if (u.protocol !== 'https:' || u.username || u.password || u.search || u.hash) {
    throw new Error(`The repository URL '${raw}' must be https, with no user name, query or fragment. ${hint}`);
  }
  const url = `${u.origin}${u.pathname.replace(/\/+$/, '').replace(/\.git$/, '')}`;
  const parts = u.pathname.split('/').filter(Boolean);
  const host = u.hostname.toLowerCase();
  if (/(^|\.)(dev\.azure\.com|visualstudio\.com)$/.test(host) && parts.includes('_git') && parts.at(-1) !== '_git') {
    return { url, kind: 'azure-repos' };
  }
  if (host === 'github.com' && parts.length === 2) return { url, kind: 'github' };
  if (/(^|\.)gitlab\./.test(host) && parts.length >= 2) return { url, kind: 'gitlab' };
  throw new Error(`The repository URL '${raw}' is not a GitHub, GitLab or Azure Repos repository: the documentation links need to know how that host shows a file. ${hint}`);
}

/** The extension's own page on the Visual Studio Marketplace. */
function marketplacePage(publisher, extensionId) {
  return `${MARKETPLACE_ITEM}${encodeURIComponent(`${publisher}.${extensionId}`)}`;
}

/**
 * The links of one build. `repositoryUrl` may be undefined (then everything is the Marketplace page).
 * Returns { repository, file(path, anchor), support, resolve(text) }.
 */
function docLinks({ publisher, extensionId, repositoryUrl }) {
  const page = marketplacePage(publisher, extensionId);
  const repo = repositoryUrl ? parseRepositoryUrl(repositoryUrl) : undefined;
  const file = (filePath, anchor) => {
    if (!repo) return page;
    const hash = anchor ? `#${anchor}` : '';
    switch (repo.kind) {
      case 'github': return `${repo.url}/blob/HEAD/${filePath}${hash}`;
      case 'gitlab': return `${repo.url}/-/blob/HEAD/${filePath}${hash}`;
      default: return `${repo.url}?path=/${encodeURIComponent(filePath)}${anchor ? `&anchor=${anchor}` : ''}`;
    }
  };
  const support = repo?.kind === 'github' ? `${repo.url}/issues` : repo?.kind === 'gitlab' ? `${repo.url}/-/issues` : `${page}&ssr=false#qna`;
  /** Every placeholder of `text` replaced; a {repository} without a repository throws. */
  const resolve = (text) => text.replace(TOKEN, (_, what, filePath, anchor) => {
    if (what === 'docs') {
      if (!filePath) throw new Error('{docs} must be followed by a file path, e.g. {docs}/README.md#security');
      return file(filePath.slice(1), anchor);
    }
    if (filePath || anchor) throw new Error(`{${what}} takes no path`);
    if (what === 'support') return support;
    if (!repo) throw new Error('{repository} is used, but no repository URL was given');
    return repo.url;
  });
  return { repository: repo?.url, file, support, resolve, page };
}

/** Whether `text` still holds a placeholder (after resolving, it must not). */
function hasPlaceholder(text) {
  return new RegExp(TOKEN.source).test(text);
}

module.exports = { docLinks, parseRepositoryUrl, marketplacePage, hasPlaceholder };
