(function () {
  "use strict";

  // WebAuthn speaks ArrayBuffers; Vigil's JSON carries them as base64url
  // without padding (the form go-webauthn writes and reads).
  function decode(s) {
    var b64 = String(s).replace(/-/g, "+").replace(/_/g, "/");
    while (b64.length % 4) {
      b64 += "=";
    }
    var bin = atob(b64);
    var out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) {
      out[i] = bin.charCodeAt(i);
    }
    return out.buffer;
  }

  function encode(buf) {
    var bytes = buf instanceof ArrayBuffer ? new Uint8Array(buf) : new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
    var bin = "";
    for (var i = 0; i < bytes.length; i++) {
      bin += String.fromCharCode(bytes[i]);
    }
    return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  // plain turns extension results, which may hold binary values, into
  // something JSON.stringify keeps.
  function plain(v) {
    if (v instanceof ArrayBuffer || ArrayBuffer.isView(v)) {
      return encode(v);
    }
    if (Array.isArray(v)) {
      return v.map(plain);
    }
    if (v && typeof v === "object") {
      var o = {};
      Object.keys(v).forEach(function (k) { o[k] = plain(v[k]); });
      return o;
    }
    return v;
  }

  function parse(options) {
    var o = typeof options === "string" ? JSON.parse(options) : options;
    if (!o || !o.publicKey || !o.publicKey.challenge) {
      throw new Error("The server sent no WebAuthn options.");
    }
    return o;
  }

  function withIDs(list) {
    return list.map(function (c) { return Object.assign({}, c, { id: decode(c.id) }); });
  }

  function creationOptions(options) {
    var o = parse(options);
    var pk = Object.assign({}, o.publicKey, { challenge: decode(o.publicKey.challenge) });
    pk.user = Object.assign({}, pk.user, { id: decode(pk.user.id) });
    if (pk.excludeCredentials) {
      pk.excludeCredentials = withIDs(pk.excludeCredentials);
    }
    var out = { publicKey: pk };
    if (o.mediation) {
      out.mediation = o.mediation;
    }
    return out;
  }

  function requestOptions(options) {
    var o = parse(options);
    var pk = Object.assign({}, o.publicKey, { challenge: decode(o.publicKey.challenge) });
    if (pk.allowCredentials) {
      pk.allowCredentials = withIDs(pk.allowCredentials);
    }
    var out = { publicKey: pk };
    if (o.mediation) {
      out.mediation = o.mediation;
    }
    return out;
  }

  function base(cred) {
    var out = {
      id: cred.id,
      rawId: encode(cred.rawId),
      type: cred.type,
      clientExtensionResults: plain(cred.getClientExtensionResults())
    };
    if (cred.authenticatorAttachment) {
      out.authenticatorAttachment = cred.authenticatorAttachment;
    }
    return out;
  }

  async function create(options) {
    var cred = await navigator.credentials.create(creationOptions(options));
    if (!cred) {
      throw new Error("The device made no credential.");
    }
    var r = cred.response;
    var out = base(cred);
    out.response = {
      clientDataJSON: encode(r.clientDataJSON),
      attestationObject: encode(r.attestationObject)
    };
    if (typeof r.getTransports === "function") {
      out.response.transports = r.getTransports();
    }
    return out;
  }

  async function get(options) {
    var cred = await navigator.credentials.get(requestOptions(options));
    if (!cred) {
      throw new Error("The device gave no answer.");
    }
    var r = cred.response;
    var out = base(cred);
    out.response = {
      clientDataJSON: encode(r.clientDataJSON),
      authenticatorData: encode(r.authenticatorData),
      signature: encode(r.signature)
    };
    if (r.userHandle) {
      out.response.userHandle = encode(r.userHandle);
    }
    return out;
  }

  window.vigilWebAuthn = { create: create, get: get };

  // post sends JSON to a path relative to the page, so the pages work
  // under any prefix, and throws Vigil's error message on a refusal.
  async function post(path, body) {
    var res;
    try {
      res = await fetch(path, {
        method: "POST",
        credentials: "same-origin",
        cache: "no-store",
        headers: { "Content-Type": "application/json", "Accept": "application/json" },
        body: JSON.stringify(body)
      });
    } catch (e) {
      throw new Error("Could not reach the server. Check the connection and try again.");
    }
    var data = null;
    try {
      data = await res.json();
    } catch (e) {
      data = null;
    }
    if (!res.ok) {
      var msg = data && data.error && data.error.message;
      throw new Error(msg || "The server refused the request (" + res.status + ").");
    }
    return data || {};
  }

  // explain turns what navigator.credentials throws into a sentence.
  function explain(e) {
    switch (e && e.name) {
      case "NotAllowedError":
        return "The device did not confirm in time, or the request was cancelled. Try again.";
      case "InvalidStateError":
        return "This device is already registered.";
      case "SecurityError":
        return "This page's address is not allowed to use this device's credentials.";
      case "NotSupportedError":
        return "This device cannot make a suitable credential.";
    }
    return (e && e.message) || "Something went wrong.";
  }

  function when(s) {
    var d = new Date(s);
    return isNaN(d.getTime()) ? "" : d.toLocaleString();
  }

  var root = document.getElementById("device");
  var button = document.getElementById("start");
  var status = document.getElementById("status");
  if (!root || !button || !status) {
    return;
  }

  function show(state, text) {
    status.setAttribute("data-state", state);
    status.textContent = text;
  }

  async function enroll() {
    var token = root.getAttribute("data-token");
    var begin = await post("enroll/options", { token: token });
    show("working", "Confirm on your device…");
    var credential = await create(begin.options);
    show("working", "Saving…");
    var done = await post("enroll/finish", { ceremony_id: begin.ceremony_id, token: token, credential: credential });
    var until = done.device && when(done.device.trusted_until);
    return "This device is now trusted." + (until ? " Trust lasts until " + until + "." : "");
  }

  async function prove() {
    var begin = await post("webauthn/options", {});
    show("working", "Confirm on your device…");
    var credential = await get(begin.options);
    show("working", "Checking…");
    await post("webauthn/finish", { ceremony_id: begin.ceremony_id, credential: credential });
    return "This device is confirmed. You can go back and sign in.";
  }

  var flow = root.getAttribute("data-flow") === "enroll" ? enroll : prove;
  button.addEventListener("click", async function () {
    if (!window.PublicKeyCredential || !navigator.credentials) {
      show("error", "This browser cannot use passkeys or security keys.");
      return;
    }
    button.disabled = true;
    show("working", "Starting…");
    try {
      show("done", await flow());
      button.hidden = true;
    } catch (e) {
      show("error", explain(e));
      button.disabled = false;
    }
  });
})();
