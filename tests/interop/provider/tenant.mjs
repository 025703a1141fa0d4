// The interop tenant: what a Logto console would hold. Mirrored in tests/interop/tenant.py.

export const ORGANIZATIONS_SCOPE = 'urn:logto:scope:organizations';
export const ORGANIZATIONS_RESOURCE = 'urn:logto:resource:organizations';
export const organizationAudience = (id) => `urn:logto:organization:${id}`;

export const DEVICE_CODE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';

export const API_A = 'https://api-a.example.com';
export const API_B = 'https://api-b.example.com/v1';

/** API resources (and the reserved organizations resource) with their access-token TTL. */
export const RESOURCES = {
  [API_A]: { ttl: 3600 },
  [API_B]: { ttl: 600 },
  [ORGANIZATIONS_RESOURCE]: { ttl: 3600 },
};

/** The apps, registered with `<base>/callback` and `<base>/` for each app base URL given;
 * the web app also with `backchannelLogoutUri` when given (OpenID Connect Back-Channel Logout
 * 1.0, session required: its logout tokens carry `sid`, as Logto's do for such an app). */
export const clients = (appBaseUrls, backchannelLogoutUri) => {
  const APP_REDIRECTS = appBaseUrls.map((base) => `${base}/callback`);
  const APP_POST_LOGOUT = appBaseUrls.map((base) => `${base}/`);
  return [
  {
    // A native app: no secret (loopback redirect URIs match on any port, RFC 8252).
    client_id: 'public-app',
    application_type: 'native',
    token_endpoint_auth_method: 'none',
    redirect_uris: APP_REDIRECTS,
    post_logout_redirect_uris: APP_POST_LOGOUT,
    grant_types: ['authorization_code', 'refresh_token'],
  },
  {
    // A traditional web app.
    client_id: 'web-app',
    client_secret: 'web-app-secret-0123456789abcdef',
    token_endpoint_auth_method: 'client_secret_basic',
    redirect_uris: APP_REDIRECTS,
    post_logout_redirect_uris: APP_POST_LOGOUT,
    grant_types: ['authorization_code', 'refresh_token'],
    ...(backchannelLogoutUri === undefined ? {} : {
      backchannel_logout_uri: backchannelLogoutUri,
      backchannel_logout_session_required: true,
    }),
  },
  {
    // A native app for device sign-in (RFC 8628: a TV or a CLI): public, no redirect URIs;
    // the user approves on another device at /oidc/device.
    client_id: 'device-app',
    application_type: 'native',
    token_endpoint_auth_method: 'none',
    redirect_uris: [],
    response_types: [],
    grant_types: [DEVICE_CODE_GRANT, 'refresh_token'],
  },
  {
    // A machine-to-machine app.
    client_id: 'm2m-app',
    client_secret: 'm2m-app-secret-0123456789abcdef',
    token_endpoint_auth_method: 'client_secret_basic',
    redirect_uris: [],
    response_types: [],
    grant_types: ['client_credentials'],
  },
  ];
};

/** Users, with their API permissions (what their roles grant). */
export const USERS = {
  u_alice: {
    username: 'alice',
    password: 'wonderland',
    name: 'Alice Liddell',
    email: 'alice@example.com',
    emailVerified: true,
    customData: { plan: 'pro' },
    permissions: { [API_A]: ['read'], [API_B]: ['read:b', 'write:b'] },
  },
  u_bob: {
    username: 'bob',
    password: 'builder',
    name: 'Bob',
    email: 'bob@example.com',
    emailVerified: false,
    customData: {},
    permissions: {},
  },
};

/** Organizations: members (users, and machine-to-machine apps) and the
 * organization-permission scopes their roles grant. */
export const ORGANIZATIONS = {
  acme: {
    name: 'Acme',
    members: { u_alice: ['read:docs'], u_bob: ['read:docs', 'write:docs'] },
    applications: { 'm2m-app': ['read:docs', 'write:docs'] },
  },
  globex: { name: 'Globex', members: { u_bob: ['read:docs'] }, applications: {} },
};

/** The machine-to-machine app's role permissions. */
export const M2M_PERMISSIONS = {
  'm2m-app': { [API_A]: ['read', 'write'] },
};
