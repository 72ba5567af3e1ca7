// Body of Vigil's settings hook (selfservice.flows.settings.after.profile.hooks,
// POST /hooks/kratos/settings, without response.parse).
//
// Without parse the hook runs after Kratos stored the change, so the
// identity below is the updated one: Vigil starts verification of any email
// address or phone number it has not seen before.
//
// Sends only the identity's id, state, verifiable addresses and locale, the
// request's Accept-Language, and the flow's id, type and transient payload;
// not the session, whose id and devices Vigil does not need here. Kratos
// evaluates hook bodies with imports disabled, so each file carries its own
// helpers.

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
  } + (
    // The person's languages, for messages when the identity names none
    // (Accept-Language is on Kratos' default header allowlist).
    if has(ctx, 'request_headers') && has(ctx.request_headers, 'Accept-Language')
    then { request_headers: { 'Accept-Language': ctx.request_headers['Accept-Language'] } }
    else {}
  )
