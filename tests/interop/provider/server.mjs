// A Logto-like OpenID provider on the `oidc-provider` package, for the SDK's interop tests.
//
//   node server.mjs --port 0   (or PORT=...; 0 picks a free port)
//
// Prints one line `LISTENING <port>` on stdout once bound (127.0.0.1 only). The issuer is
// `http://127.0.0.1:<port>/oidc`. Configured the way Logto configures oidc-provider where the
// client can see it; the tenant (apps, users, APIs,
// organizations) is fixed in tenant.mjs.
//
// Test-only routes (loopback only, never part of Logto):
//   POST /__test/rotate-keys          new ES384 signing key; the previous one stays published
//   POST /__test/advance?seconds=N    move the provider's clock forward by N seconds
//   POST /__test/device-interval?seconds=N
//                                     the `interval` device authorization responses name from
//                                     now on (without `seconds`: none, so clients use 5 s)
//   POST /__test/reset                clock back to real time, request counts and device
//                                     polling records cleared, no device interval named
//   GET  /__test/state                {"offset": seconds, "kids": [...], "requests": {path: n},
//                                     "backchannel": {"success": n, "error": n}}
//
// `--backchannel-logout-uri <url>` registers a back-channel logout receiver (loopback) for the
// web app; ending a session at /oidc/session/end then POSTs its logout token there.

import { generateKeyPairSync, randomBytes } from 'node:crypto';
import http from 'node:http';
import { parseArgs } from 'node:util';

import Provider, { errors } from 'oidc-provider';
import * as clientCredentialsGrant from 'oidc-provider/lib/actions/grants/client_credentials.js';
import * as deviceCodeGrant from 'oidc-provider/lib/actions/grants/device_code.js';
import * as refreshTokenGrant from 'oidc-provider/lib/actions/grants/refresh_token.js';
import { createMemoryAdapter } from 'oidc-provider/lib/adapters/memory_adapter.js';
// oidc-provider's internal registry: where its built-in grant handlers sit, already bound.
import internals from 'oidc-provider/lib/helpers/weak_cache.js';

import {
  M2M_PERMISSIONS,
  ORGANIZATIONS,
  ORGANIZATIONS_RESOURCE,
  ORGANIZATIONS_SCOPE,
  RESOURCES,
  USERS,
  clients,
  organizationAudience,
} from './tenant.mjs';

// ---- the clock: oidc-provider reads Date.now(); tests move it forward instead of sleeping.
let clockOffsetMs = 0;
const realNow = Date.now.bind(Date);
Date.now = () => realNow() + clockOffsetMs;

// ---- signing keys: ES384 like a new Logto tenant; the newest signs, the previous is kept.
function newSigningKey() {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-384' });
  const jwk = privateKey.export({ format: 'jwk' });
  return { ...jwk, kid: randomBytes(12).toString('base64url'), alg: 'ES384', use: 'sig' };
}
let signingKeys = [newSigningKey()];

// ---- the tenant's rules, as Logto applies them through oidc-provider's extension points.

/** Who the current request acts for: the session (authorization), or the grant's artifact. */
function accountIdOf(ctx) {
  const { entities } = ctx.oidc;
  return (
    entities.Account?.accountId
    ?? entities.RefreshToken?.accountId
    ?? entities.AuthorizationCode?.accountId
    ?? entities.DeviceCode?.accountId
    ?? ctx.oidc.session?.accountId
  );
}

/** The organization a token request names (Logto's `organization_id` token parameter). */
function requestedOrganization(ctx) {
  return ctx.oidc.route === 'token' ? ctx.oidc.params?.organization_id : undefined;
}

function denied(description) {
  // Logto answers 403 where oidc-provider's AccessDenied would be 400.
  const error = new errors.AccessDenied(description);
  error.status = 403;
  error.statusCode = 403;
  return error;
}

/** Logto's refusal of a non-member, in its words for a user or a machine-to-machine app. */
const notAMember = (accountId) => denied(accountId === undefined
  ? 'app has not associated with the organization'
  : 'user is not a member of the organization');

/** The organization scopes a member holds (what its organization roles grant): the user's,
 * or with no user (client credentials) the machine-to-machine app's; undefined for a
 * non-member. */
function memberScopes(organizationId, accountId, clientId) {
  const organization = ORGANIZATIONS[organizationId];
  if (organization === undefined) return undefined;
  return accountId === undefined ? organization.applications[clientId] : organization.members[accountId];
}

/** Scopes of `indicator` this request may receive: the user's (or the M2M app's) permissions. */
function allowedScopes(ctx, indicator, client) {
  const accountId = accountIdOf(ctx);
  if (indicator === ORGANIZATIONS_RESOURCE) {
    const organizationId = requestedOrganization(ctx);
    if (organizationId === undefined) {
      // At sign-in: everything the user holds in any organization (filtered per org later).
      return Object.values(ORGANIZATIONS).flatMap((org) => org.members[accountId] ?? []);
    }
    const scopes = memberScopes(organizationId, accountId, client.clientId);
    if (scopes === undefined) throw notAMember(accountId);
    return scopes;
  }
  // A machine-to-machine app's API permissions (also for an API within an organization:
  // simplified, Logto takes those from the app's organization roles).
  if (accountId === undefined) return M2M_PERMISSIONS[client.clientId]?.[indicator] ?? [];
  return USERS[accountId]?.permissions[indicator] ?? [];
}

async function getResourceServerInfo(ctx, indicator, client) {
  const resource = RESOURCES[indicator];
  if (resource === undefined) throw new errors.InvalidTarget('resource indicator is missing, or unknown');
  const organizationId = requestedOrganization(ctx);
  if (organizationId !== undefined && indicator === ORGANIZATIONS_RESOURCE) {
    const refreshToken = ctx.oidc.entities.RefreshToken;
    if (refreshToken && !refreshToken.scopes.has(ORGANIZATIONS_SCOPE)) {
      throw new errors.InsufficientScope('refresh token has no organizations scope', ORGANIZATIONS_SCOPE);
    }
  } else if (organizationId !== undefined && memberScopes(organizationId, accountIdOf(ctx), client.clientId) === undefined) {
    throw notAMember(accountIdOf(ctx));
  }
  const info = {
    scope: allowedScopes(ctx, indicator, client).join(' '),
    accessTokenFormat: 'jwt',
    accessTokenTTL: resource.ttl,
    jwt: { sign: { alg: 'ES384' } },
  };
  if (organizationId !== undefined && indicator === ORGANIZATIONS_RESOURCE) {
    info.audience = organizationAudience(organizationId);
  }
  return info;
}

/** Logto puts `organization_id` in an API token requested for an organization. */
async function extraTokenClaims(ctx, token) {
  const organizationId = requestedOrganization(ctx);
  if (organizationId === undefined || token.kind === 'RefreshToken') return undefined;
  const audience = token.resourceServer?.audience ?? token.aud;
  if (audience === organizationAudience(organizationId)) return undefined;
  return { organization_id: organizationId };
}

/** Logto's rule: public clients rotate on every use; confidential ones after 70% of the TTL. */
function rotateRefreshToken(ctx) {
  const { RefreshToken: refreshToken, Client: client } = ctx.oidc.entities;
  if (client.clientAuthMethod === 'none') return true;
  return refreshToken.ttlPercentagePassed() >= 70;
}

async function findAccount(_ctx, sub) {
  const user = USERS[sub];
  if (user === undefined) return undefined;
  return {
    accountId: sub,
    async claims(use) {
      const claims = {
        sub,
        name: user.name,
        username: user.username,
        picture: null,
        email: user.email,
        email_verified: user.emailVerified,
        organizations: Object.keys(ORGANIZATIONS).filter((id) => ORGANIZATIONS[id].members[sub]),
      };
      // Like Logto: custom data only from the userinfo endpoint, never in the ID token.
      if (use === 'userinfo') claims.custom_data = user.customData;
      return claims;
    },
  };
}

// ---- pages -------------------------------------------------------------------------------

const escape = (text) => String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function page(title, body) {
  return `<!DOCTYPE html><html><head><meta charset="utf-8"><title>${escape(title)}</title></head>`
    + `<body><h1>${escape(title)}</h1>${body}</body></html>`;
}

function loginPage(uid, clientId, error) {
  return page('Sign in', `${error ? `<p id="error">${escape(error)}</p>` : ''}
<p>to <code>${escape(clientId)}</code></p>
<form id="login" method="post" action="/interaction/${escape(uid)}/login">
  <label>Username <input id="username" name="username" autocomplete="username"></label>
  <label>Password <input id="password" name="password" type="password"></label>
  <button id="submit" type="submit">Sign in</button>
</form>
<form id="abort" method="post" action="/interaction/${escape(uid)}/abort">
  <button id="cancel" type="submit">Cancel</button>
</form>`);
}

// The device flow's pages (RFC 8628 section 3.3), Logto's paths: /oidc/device. `form` is
// oidc-provider's own (it carries the xsrf token); each page says where it stands in an id,
// for the tests that play the user with plain HTTP.
async function userCodeInputSource(ctx, form, _out, err) {
  // A re-rendered page names the reason (AbortedError after a refusal, NotFoundError, ...).
  const reason = err ? `<p id="error" data-reason="${escape(err.name ?? 'error')}">${escape(err.message ?? 'error')}</p>` : '';
  ctx.body = page('Enter your code', `${reason}
<div id="device-input">${form}<button id="continue" type="submit" form="op.deviceInputForm">Continue</button></div>`);
}

async function userCodeConfirmSource(ctx, form, client, _deviceInfo, userCode) {
  ctx.body = page('Confirm the device', `<p>Sign in to <code>${escape(client.clientId)}</code> with code <code id="user-code">${escape(userCode)}</code>?</p>
<div id="device-confirm">${form}<button id="confirm" type="submit" form="op.deviceConfirmForm">Continue</button>
<button id="deny" type="submit" form="op.deviceConfirmForm" name="abort" value="yes">Abort</button></div>`);
}

async function successSource(ctx) {
  ctx.body = page('Device signed in', `<p id="device-success">${escape(ctx.oidc.client.clientId)} is signed in; you can close this page.</p>`);
}

/** The end-session page: like Logto, no question when the RP proved who it is. */
async function logoutSource(ctx, form) {
  const hinted = Boolean(ctx.oidc.params.id_token_hint);
  const yes = form.replace('</form>', '<input type="hidden" name="logout" value="yes"></form>');
  ctx.body = hinted
    ? page('Signing out', `${yes}<script>document.forms[0].submit()</script>`)
    : page('Sign out?', `${form}<button id="confirm" type="submit" form="op.logoutForm" name="logout" value="yes">Sign out</button>`);
}

async function postLogoutSuccessSource(ctx) {
  ctx.body = page('Signed out', '<p>You are signed out.</p>');
}

async function renderError(ctx, out) {
  ctx.type = 'html';
  ctx.body = page('Error', `<pre id="error">${escape(JSON.stringify(out))}</pre>`);
}

// ---- the provider ------------------------------------------------------------------------

const cookieKeys = [randomBytes(32).toString('hex')];
// One in-memory store for every provider instance, so grants survive a key rotation (which
// builds a new instance with the new key set).
const memoryAdapter = createMemoryAdapter(0);

// Logto's adapter reads a database row whatever its expiry (rows are deleted later), so a
// device code polled after its expiry is still found and answered `expired_token` (RFC 8628
// section 3.5), and its user code gets the "expired" page. The memory adapter drops entries at expiry
// (`invalid_grant`, "not found"): keep device codes a day past it. Their expiry itself is
// checked by oidc-provider against the payload's `exp`, unchanged.
const EXPIRED_DEVICE_CODE_RETENTION_S = 24 * 3600;

const adapter = (model) => {
  const inner = memoryAdapter(model);
  if (model !== 'DeviceCode') return inner;
  return new Proxy(inner, {
    get(target, name) {
      if (name === 'upsert') {
        return (id, payload, expiresIn) => target.upsert(id, payload, typeof expiresIn === 'number' ? expiresIn + EXPIRED_DEVICE_CODE_RETENTION_S : expiresIn);
      }
      const value = target[name];
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
};

/** oidc-provider's outgoing requests (its back-channel logout POSTs). Its guard against
 * server-side request forgery cuts connections to special-use addresses, loopback among them;
 * the suite's receiver is on loopback, so for that one registered URI (and nothing else) the
 * guard is left out. */
function loopbackFetch(url, options) {
  if (backchannelLogoutUri !== undefined && String(url) === new URL(backchannelLogoutUri).href) {
    const { dispatcher: _ssrfGuard, ...unguarded } = options;
    return globalThis.fetch(url, unguarded);
  }
  return globalThis.fetch(url, options);
}

function configuration() {
  return {
    adapter,
    clients: clients(appBaseUrls, backchannelLogoutUri),
    clientDefaults: { id_token_signed_response_alg: 'ES384', grant_types: ['authorization_code', 'refresh_token'] },
    jwks: { keys: signingKeys },
    cookies: { keys: cookieKeys },
    findAccount,
    conformIdTokenClaims: false,
    responseTypes: ['code'],
    enabledJWA: { idTokenSigningAlgValues: ['ES384'] },
    scopes: ['openid', 'offline_access', 'profile', 'email', ORGANIZATIONS_SCOPE, 'custom_data'],
    claims: {
      openid: ['sub'],
      profile: ['name', 'username', 'picture'],
      email: ['email', 'email_verified'],
      [ORGANIZATIONS_SCOPE]: ['organizations'],
      custom_data: ['custom_data'],
    },
    extraParams: ['organization_id', 'first_screen', 'identifier', 'direct_sign_in', 'interaction_mode'],
    pkce: { required: () => true },
    rotateRefreshToken,
    extraTokenClaims,
    renderError,
    interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
    fetch: loopbackFetch,
    features: {
      devInteractions: { enabled: false },
      // Logto advertises backchannel_logout_supported and sends logout tokens (typ
      // logout+jwt) to the apps of a session that ends.
      backchannelLogout: { enabled: true },
      clientCredentials: { enabled: true },
      // Logto's device flow: /oidc/device/auth and /oidc/device (oidc-provider's default
      // routes under the /oidc mount). oidc-provider's response (which Logto serves) names no
      // `interval`, so clients poll every 5 s, RFC 8628's default.
      deviceFlow: { enabled: true, userCodeInputSource, userCodeConfirmSource, successSource },
      introspection: { enabled: true, allowedPolicy: async (_ctx, client) => client.clientAuthMethod !== 'none' },
      revocation: { enabled: true },
      rpInitiatedLogout: { enabled: true, logoutSource, postLogoutSuccessSource },
      resourceIndicators: {
        enabled: true,
        defaultResource: async () => undefined,
        useGrantedResource: async () => false,
        getResourceServerInfo,
      },
    },
    ttl: {
      AccessToken: 3600,
      AuthorizationCode: 60,
      ClientCredentials: 3600,
      DeviceCode: 600,
      IdToken: 3600,
      RefreshToken: 14 * 24 * 3600,
      Grant: 180 * 24 * 3600,
      Interaction: 3600,
      Session: 14 * 24 * 3600,
    },
  };
}

/** Logto's refresh grant also takes `organization_id`: without a `resource` it means the
 * organization token, which oidc-provider sees as the reserved organizations resource. Like
 * Logto, membership and the organizations scope are checked before the refresh token rotates,
 * so a refused organization never costs the client its refresh token. */
const refreshWithOrganization = (builtIn) => async (ctx) => {
  const { params, provider } = ctx.oidc;
  if (params.organization_id) {
    const refreshToken = await provider.RefreshToken.find(String(params.refresh_token ?? ''));
    if (refreshToken && refreshToken.clientId === ctx.oidc.client.clientId && !refreshToken.consumed) {
      if (memberScopes(params.organization_id, refreshToken.accountId, refreshToken.clientId) === undefined) {
        throw denied('user is not a member of the organization');
      }
      if (!refreshToken.scopes.has(ORGANIZATIONS_SCOPE)) {
        throw new errors.InsufficientScope('refresh token missing required scope', ORGANIZATIONS_SCOPE);
      }
    }
    if (!params.resource) params.resource = ORGANIZATIONS_RESOURCE;
  }
  return builtIn(ctx);
};

/** Logto refuses a client_credentials request naming neither a resource nor an organization. */
const clientCredentialsWithTarget = (builtIn) => async (ctx) => {
  const { params } = ctx.oidc;
  if (!params.resource && !params.organization_id) {
    throw new errors.InvalidTarget('resource or organization_id is required');
  }
  if (params.organization_id && !params.resource) params.resource = ORGANIZATIONS_RESOURCE;
  return builtIn(ctx);
};

/** When each device code was last polled, and the interval it is held to (RFC 8628 section
 * 3.5). oidc-provider v9 defines `slow_down` but never answers it: its device-code grant
 * answers an early poll `authorization_pending` (and so, as far as this suite knows, does
 * Logto, which runs that grant). This provider enforces the interval, so a client's pacing
 * and its back-off meet a server that checks them; a client that keeps to the interval never
 * sees the difference. Keyed by the device code as sent; the test reset clears it. */
const DEFAULT_DEVICE_INTERVAL_S = 5;
const SLOW_DOWN_STEP_S = 5;
// The provider sees arrivals, the client times its sends: a client that waits exactly the
// interval between two sends may see the first arrive later than the second (a busy event
// loop), so arrivals closer than the interval by less than a fifth of it (at most 1 s) are
// not "too fast".
const POLL_TOLERANCE_MS = 1000;
const tolerance = (interval) => Math.min(POLL_TOLERANCE_MS, interval * 200);
const devicePolls = new Map();
// The `interval` a device authorization response names (test-only: undefined, the default,
// names none, as Logto does). A short one keeps a client's real wait between polls short.
let deviceInterval;

/** Name the interval (when a test set one) and hold the new device code to it. */
function onDeviceAuthorization(_ctx, body) {
  if (deviceInterval !== undefined) body.interval = deviceInterval;
  devicePolls.set(body.device_code, { at: undefined, interval: deviceInterval ?? DEFAULT_DEVICE_INTERVAL_S });
}

const pacedDeviceCode = (builtIn) => async (ctx) => {
  const key = String(ctx.oidc.params.device_code ?? '');
  const now = Date.now();
  const last = devicePolls.get(key);
  if (last?.at !== undefined && now - last.at < last.interval * 1000 - tolerance(last.interval)) {
    // Too early: the interval grows by 5 s for this and every later poll (section 3.5).
    devicePolls.set(key, { at: now, interval: last.interval + SLOW_DOWN_STEP_S });
    throw new errors.SlowDown();
  }
  devicePolls.set(key, { at: now, interval: last?.interval ?? DEFAULT_DEVICE_INTERVAL_S });
  return builtIn(ctx);
};

function buildProvider(issuer) {
  const provider = new Provider(issuer, configuration());
  provider.proxy = false;
  // Wrap the built-in handlers (Logto replaces them with its own copies) to take
  // `organization_id` as a token parameter.
  const builtIn = internals(provider).grantTypeHandlers;
  const withOrg = (names) => [...names, 'resource', 'organization_id'];
  provider.registerGrantType('refresh_token', refreshWithOrganization(builtIn.get('refresh_token')), withOrg(refreshTokenGrant.parameters), ['resource']);
  provider.registerGrantType('client_credentials', clientCredentialsWithTarget(builtIn.get('client_credentials')), withOrg(clientCredentialsGrant.parameters), ['resource']);
  provider.registerGrantType(deviceCodeGrant.grantType, pacedDeviceCode(builtIn.get(deviceCodeGrant.grantType)), [...deviceCodeGrant.parameters, 'resource'], ['resource']);
  // Emitted once the response body is set, before it is sent: the handler may add to it.
  provider.on('device_authorization.success', onDeviceAuthorization);
  provider.on('server_error', (_ctx, error) => console.error('server_error', error));
  provider.on('backchannel.success', () => { backchannelResults.success += 1; });
  provider.on('backchannel.error', (_ctx, error) => {
    backchannelResults.error += 1;
    console.error('backchannel.error', error.message);
  });
  if (process.env.INTEROP_DEBUG) {
    provider.on('grant.error', (_ctx, error) => console.error('grant.error', error.error, error.error_description, error.error_detail));
  }
  return provider;
}

// ---- interactions: a login form, consent approved automatically --------------------------

async function readForm(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

function send(res, status, body, type = 'text/html; charset=utf-8') {
  res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
  res.end(body);
}

async function approveConsent(provider, details) {
  const { prompt, params, session, grantId } = details;
  const grant = grantId
    ? await provider.Grant.find(grantId)
    : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
  const missing = prompt.details;
  if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
  if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
  for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes ?? {})) {
    grant.addResourceScope(indicator, scopes.join(' '));
  }
  return grant.save();
}

async function interaction(provider, req, res, path) {
  const details = await provider.interactionDetails(req, res);
  const [, uid, action] = path.split('/').filter(Boolean).concat([undefined]);
  if (uid !== details.uid) return send(res, 400, page('Error', 'interaction mismatch'));
  if (req.method === 'GET' && action === undefined) {
    if (details.prompt.name === 'login') {
      return send(res, 200, loginPage(uid, details.params.client_id));
    }
    const consentGrantId = await approveConsent(provider, details);
    return provider.interactionFinished(req, res, { consent: { grantId: consentGrantId } }, { mergeWithLastSubmission: true });
  }
  if (req.method === 'POST' && action === 'login') {
    const form = await readForm(req);
    const entry = Object.entries(USERS).find(([, user]) => user.username === form.get('username'));
    if (entry === undefined || entry[1].password !== form.get('password')) {
      return send(res, 200, loginPage(uid, details.params.client_id, 'Wrong username or password'));
    }
    return provider.interactionFinished(req, res, { login: { accountId: entry[0] } }, { mergeWithLastSubmission: false });
  }
  if (req.method === 'POST' && action === 'abort') {
    // The user cancels sign-in: access_denied to the client (a device code records it).
    const result = { error: 'access_denied', error_description: 'End-User aborted interaction' };
    return provider.interactionFinished(req, res, result, { mergeWithLastSubmission: false });
  }
  return send(res, 404, page('Error', 'not found'));
}

// ---- test-only administration ------------------------------------------------------------

function admin(state, req, res, url) {
  if (req.method === 'POST' && url.pathname === '/__test/rotate-keys') {
    signingKeys = [newSigningKey(), signingKeys[0]];
    state.provider = buildProvider(state.issuer);
    state.handler = state.provider.callback();
    return send(res, 200, JSON.stringify({ kids: signingKeys.map((k) => k.kid) }), 'application/json');
  }
  if (req.method === 'POST' && url.pathname === '/__test/advance') {
    clockOffsetMs += Number(url.searchParams.get('seconds') ?? '0') * 1000;
    return send(res, 200, JSON.stringify({ offset: clockOffsetMs / 1000 }), 'application/json');
  }
  if (req.method === 'POST' && url.pathname === '/__test/device-interval') {
    const seconds = url.searchParams.get('seconds');
    deviceInterval = seconds === null ? undefined : Number(seconds);
    return send(res, 200, JSON.stringify({ interval: deviceInterval ?? null }), 'application/json');
  }
  if (req.method === 'POST' && url.pathname === '/__test/reset') {
    deviceInterval = undefined;
    clockOffsetMs = 0;
    requestCounts.clear();
    devicePolls.clear();
    backchannelResults.success = 0;
    backchannelResults.error = 0;
    return send(res, 200, '{}', 'application/json');
  }
  if (req.method === 'GET' && url.pathname === '/__test/state') {
    const body = {
      offset: clockOffsetMs / 1000,
      kids: signingKeys.map((k) => k.kid),
      requests: Object.fromEntries(requestCounts),
      backchannel: { ...backchannelResults },
    };
    return send(res, 200, JSON.stringify(body), 'application/json');
  }
  return send(res, 404, 'not found', 'text/plain');
}

// ---- the HTTP server ---------------------------------------------------------------------

/** Requests seen per path since the last reset, for tests that count fetches. */
const requestCounts = new Map();
/** Back-channel logout deliveries since the last reset: answered 200 (or 204), or not. */
const backchannelResults = { success: 0, error: 0 };

function route(state) {
  return async (req, res) => {
    const url = new URL(req.url, 'http://127.0.0.1');
    if (!url.pathname.startsWith('/__test/')) {
      requestCounts.set(url.pathname, (requestCounts.get(url.pathname) ?? 0) + 1);
    }
    try {
      if (url.pathname === '/oidc' || url.pathname.startsWith('/oidc/')) {
        // Mount under /oidc: oidc-provider derives its mount path from originalUrl.
        req.originalUrl = req.url;
        req.url = req.url.slice('/oidc'.length) || '/';
        return state.handler(req, res);
      }
      if (url.pathname.startsWith('/interaction/')) return await interaction(state.provider, req, res, url.pathname);
      if (url.pathname.startsWith('/__test/')) return admin(state, req, res, url);
      return send(res, 404, page('Not found', ''));
    } catch (error) {
      console.error(error);
      if (!res.headersSent) send(res, 400, page('Error', escape(error.message ?? 'error')));
      return undefined;
    }
  };
}

const { values: args } = parseArgs({
  options: {
    port: { type: 'string' },
    app: { type: 'string', multiple: true },
    'backchannel-logout-uri': { type: 'string' },
  },
});
// The relying parties' base URLs (redirect and post-logout URIs derive from them).
const appBaseUrls = args.app ?? (process.env.INTEROP_APP_BASE_URLS ?? 'http://127.0.0.1:9').split(/\s+/).filter(Boolean);
const port = Number(args.port ?? process.env.PORT ?? '0');
const backchannelLogoutUri = args['backchannel-logout-uri'];
const server = http.createServer();
server.listen(port, '127.0.0.1', () => {
  const bound = server.address().port;
  const state = { issuer: `http://127.0.0.1:${bound}/oidc`, provider: undefined };
  state.provider = buildProvider(state.issuer);
  state.handler = state.provider.callback();
  server.on('request', route(state));
  process.stdout.write(`LISTENING ${bound}\n`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
