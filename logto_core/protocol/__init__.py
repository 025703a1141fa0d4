"""The protocol steps: each a pair of pure functions, "build the request" and "process the
response", for one exchange with Logto (discovery, the sign-in URL and its callback, the
token endpoint, the ID token, userinfo, revocation, end session) plus PKCE. Flows
(:mod:`logto_core.flows`) compose them; nothing here keeps state or sends anything."""
