// Body of Vigil's login hook (selfservice.flows.login.after.<method>.hooks,
// POST /hooks/kratos/login, response.parse: true).
//
// Sends only what Vigil's login gate reads: the identity's id, state,
// verifiable addresses and locale; the flow (its id keys the challenge);
// the client's IP and user agent; the request's Accept-Language; and
// Vigil's own cookies (the trusted-device token). Everything else in the context (other traits, the session's id
// and authentication methods, the UI nodes, other cookies) stays at Kratos.
//
// Kratos evaluates hook bodies with imports disabled, so each file carries
// its own helpers.

// has: o is an object with a non-null field k.
local has(o, k) = std.isObject(o) && std.objectHas(o, k) && o[k] != null;

function(ctx)
  if !has(ctx, 'identity') then error 'vigil: the hook context has no identity'
  else {
    identity: {
      id: ctx.identity.id,
      state: ctx.identity.state,
      traits: if has(ctx.identity, 'traits') && has(ctx.identity.traits, 'locale')
      then { locale: ctx.identity.traits.locale }
      else {},
      verifiable_addresses: [
        { value: a.value, via: a.via, verified: a.verified }
        for a in (if has(ctx.identity, 'verifiable_addresses') then ctx.identity.verifiable_addresses else [])
      ],
    },
    flow: { id: ctx.flow.id, type: ctx.flow.type }
          + (if has(ctx.flow, 'active') then { active: ctx.flow.active } else {})
          + (if has(ctx.flow, 'transient_payload') then { transient_payload: ctx.flow.transient_payload } else {}),
    // The session exists only in memory while login hooks run: its id is the
    // nil UUID, so Vigil never keys anything on it. The device carries the
    // client IP (possibly with a port) and the user agent.
    session: {
      devices: [
        { [k]: d[k] for k in ['ip_address', 'user_agent'] if has(d, k) }
        for d in (if has(ctx, 'session') && has(ctx.session, 'devices') then ctx.session.devices else [])
      ],
    },
    // Kratos forwards every cookie of the request; Vigil needs only its own.
    request_cookies: if has(ctx, 'request_cookies') then {
      [name]: ctx.request_cookies[name]
      for name in std.objectFields(ctx.request_cookies)
      if std.startsWith(name, 'vigil_')
    } else {},
  } + (
    // The person's languages, for messages when the identity names none
    // (Accept-Language is on Kratos' default header allowlist).
    if has(ctx, 'request_headers') && has(ctx.request_headers, 'Accept-Language')
    then { request_headers: { 'Accept-Language': ctx.request_headers['Accept-Language'] } }
    else {}
  )
